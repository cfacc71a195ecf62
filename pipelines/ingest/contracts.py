"""Declarative source contracts: how a provider layout maps onto the long measure row.

A contract is a YAML file in ``source_contracts/``. Adding a provider's layout is a new
file, not code. Two layouts exist:

* ``long``: one row per organisation, period and measure (columns ``org_code``, ``period``,
  ``measure_code``, ``numerator``, ``denominator``, each with aliases);
* ``wide``: one row per organisation and month, a numerator and a denominator column per
  measure (a denominator column may serve several measures, e.g. occupied bed days).

The header need not be the first row: title rows above it are skipped, and the header is
the first row within ``header_search_rows`` that satisfies the contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).parent / "source_contracts"
LONG_COLUMNS = ("org_code", "period", "measure_code", "numerator", "denominator")
WIDE_ID_COLUMNS = ("org_code", "period")


def header_key(name: str | None) -> str:
    """Compare headers the way people type them: case, spacing and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", (name or "").replace("\ufeff", "").lower())


@dataclass(frozen=True)
class ContractMatch:
    """Which file header carries each contract column; for wide files, each measure's pair."""

    contract: SourceContract
    header_row: int
    columns: dict[str, str]
    measures: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceContract:
    name: str
    layout: str
    file_suffixes: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    measures: dict[str, dict[str, tuple[str, ...]]]
    header_search_rows: int

    def _find(self, by_key: dict[str, str], aliases: tuple[str, ...]) -> str | None:
        return next((by_key[header_key(a)] for a in aliases if header_key(a) in by_key), None)

    def match_row(self, headers: list[str | None], row: int) -> ContractMatch | None:
        """The mapping if ``headers`` (one row of the file) satisfies this contract."""
        by_key = {header_key(h): h for h in headers if h and header_key(h)}
        found = {c: self._find(by_key, aliases) for c, aliases in self.columns.items()}
        if any(v is None for v in found.values()):
            return None
        measures = {}
        for code, roles in self.measures.items():
            numerator = self._find(by_key, roles["numerator"])
            denominator = self._find(by_key, roles["denominator"])
            if numerator and denominator:
                measures[code] = (numerator, denominator)
        if self.layout == "wide" and not measures:
            return None
        return ContractMatch(self, row, found, measures)  # type: ignore[arg-type]

    def describe_missing(self, headers: list[str | None]) -> str:
        by_key = {header_key(h): h for h in headers if h}
        missing = [c for c, a in self.columns.items() if self._find(by_key, a) is None]
        if missing:
            return f"{self.name} lacks {', '.join(missing)}"
        return f"{self.name} finds no complete numerator/denominator pair"


def _aliases(name: str, values: list[str] | None) -> tuple[str, ...]:
    return (name, *(values or []))


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> tuple[SourceContract, ...]:
    contracts = []
    for path in sorted(directory.glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        layout = spec["layout"]
        if layout not in ("long", "wide"):
            raise ValueError(f"{path.name}: layout must be long or wide, not {layout!r}")
        required = LONG_COLUMNS if layout == "long" else WIDE_ID_COLUMNS
        columns = {c: _aliases(c, spec["columns"].get(c)) for c in required}
        measures = {
            code: {role: tuple(pair[role]) for role in ("numerator", "denominator")}
            for code, pair in (spec.get("measures") or {}).items()
        }
        contracts.append(
            SourceContract(
                name=spec["name"],
                layout=layout,
                file_suffixes=tuple(s.lower() for s in spec.get("file_suffixes", [".csv"])),
                columns=columns,
                measures=measures,
                header_search_rows=int(spec.get("header_search_rows", 10)),
            )
        )
    return tuple(contracts)


def match_contract(
    rows: list[list[str | None]], suffix: str
) -> tuple[ContractMatch | None, list[str]]:
    """The first contract (by file name order) whose header appears in the first rows."""
    problems = []
    for contract in load_contracts():
        if suffix not in contract.file_suffixes:
            continue
        for i, row in enumerate(rows[: contract.header_search_rows]):
            match = contract.match_row(row, i)
            if match is not None:
                return match, []
        if rows:
            problems.append(contract.describe_missing(rows[0]))
    if not problems:
        problems.append(f"no source contract reads '{suffix}' files")
    return None, problems
