"""Declarative source contracts: how a provider layout maps onto the long measure row.

A contract is a YAML file in ``source_contracts/``. Adding a provider's layout is a new
file, not code. Two layouts exist:

* ``long``: one row per organisation, period and measure (columns ``org_code``, ``period``,
  ``measure_code``, ``numerator``, ``denominator``, each with aliases);
* ``wide``: one row per organisation and month, a numerator and a denominator column per
  measure (a denominator column may serve several measures, e.g. occupied bed days).

The header need not be the first row: title rows above it are skipped, and the header is
the first row within ``header_search_rows`` that satisfies the contract.

A contract also says how its files write what cannot be told from the text alone, because
nothing is guessed (docs/design.md §3): ``number_locale`` (which of ``.`` and ``,`` is the decimal
separator), ``date_order`` (``01/03/2024``: day or month first) and ``hidden_cells`` (what
to do with XLSX rows, columns or sheets the provider cannot see). A contract may be limited
to some ``submitters`` (ODS codes): it is then tried first, and only, for their files; that
is how one provider's spreadsheet locale is declared without changing everyone's layout.
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
DATE_ORDERS = ("DMY", "MDY", "YMD")
HIDDEN_CELLS_POLICIES = ("refuse", "load_with_warning")


@dataclass(frozen=True)
class NumberFormat:
    """How a locale writes numbers: its decimal and thousands separators."""

    locale: str
    decimal: str
    thousands: str

    def describe(self) -> str:
        thousands = "space" if self.thousands == " " else f"'{self.thousands}'"
        return f"{self.locale} (decimal '{self.decimal}', thousands {thousands})"


# The locales a contract may declare. Spaces (also non-breaking and thin ones) group
# thousands in every locale, so fr-FR's thousands separator needs no special handling.
NUMBER_LOCALES = {
    code: NumberFormat(code, decimal, thousands)
    for code, decimal, thousands in [
        ("en-GB", ".", ","),
        ("en-IE", ".", ","),
        ("en-US", ".", ","),
        ("de-DE", ",", "."),
        ("nl-NL", ",", "."),
        ("es-ES", ",", "."),
        ("it-IT", ",", "."),
        ("da-DK", ",", "."),
        ("pt-PT", ",", " "),
        ("fr-FR", ",", " "),
        ("pl-PL", ",", " "),
    ]
}


def header_key(name: str | None) -> str:
    """Compare headers the way people type them: case, spacing and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", (name or "").replace("\ufeff", "").lower())


@dataclass(frozen=True)
class ContractMatch:
    """Which column of the header row carries each contract column (0-based positions);
    for wide files, each measure's numerator and denominator. ``conflicts`` names every
    contract column that more than one file column claims: such a file is refused, because
    reading either column would be a guess."""

    contract: SourceContract
    header_row: int
    columns: dict[str, int]
    measures: dict[str, tuple[int, int]] = field(default_factory=dict)
    headers: tuple[str | None, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def positions(self) -> list[int]:
        """Every column position the contract reads, in order."""
        used = set(self.columns.values())
        for numerator, denominator in self.measures.values():
            used |= {numerator, denominator}
        return sorted(used)

    @property
    def measure_positions(self) -> list[int]:
        """Wide layout: the numerator and denominator columns (a record with all of them
        blank reports no measure that month)."""
        return sorted({p for pair in self.measures.values() for p in pair})

    def header_name(self, position: int) -> str:
        return (self.headers[position] or "").strip() if position < len(self.headers) else ""


@dataclass(frozen=True)
class SourceContract:
    name: str
    layout: str
    file_suffixes: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    measures: dict[str, dict[str, tuple[str, ...]]]
    header_search_rows: int
    number_format: NumberFormat | None = None
    date_order: str | None = None
    hidden_cells: str = "refuse"
    submitters: tuple[str, ...] = ()

    def match_row(self, headers: list[str | None], row: int) -> ContractMatch | None:
        """The mapping if ``headers`` (one row of the file) satisfies this contract."""
        keys = [header_key(h) for h in headers]

        def positions(aliases: tuple[str, ...]) -> list[int]:
            wanted = {header_key(a) for a in aliases}
            return [i for i, k in enumerate(keys) if k and k in wanted]

        found = {c: positions(aliases) for c, aliases in self.columns.items()}
        if any(not p for p in found.values()):
            return None
        claims: dict[tuple[int, ...], list[str]] = {}
        for column, places in found.items():
            claims.setdefault(tuple(places), []).append(column)
        measures = {}
        for code, roles in self.measures.items():
            numerator = positions(roles["numerator"])
            denominator = positions(roles["denominator"])
            if numerator and denominator:
                measures[code] = (numerator[0], denominator[0])
                claims.setdefault(tuple(numerator), []).append(f"{code} numerator")
                claims.setdefault(tuple(denominator), []).append(f"{code} denominator")
        if self.layout == "wide" and not measures:
            return None
        conflicts = tuple(
            f"{', '.join(fields)}: "
            + " and ".join(f"'{(headers[p] or '').strip()}' (column {p + 1})" for p in places)
            for places, fields in claims.items()
            if len(places) > 1
        )
        first = {column: places[0] for column, places in found.items()}
        return ContractMatch(self, row, first, measures, tuple(headers), conflicts)

    def describe_missing(self, headers: list[str | None]) -> str:
        keys = {header_key(h) for h in headers if h}
        missing = [
            c for c, aliases in self.columns.items() if not keys & {header_key(a) for a in aliases}
        ]
        if missing:
            return f"{self.name} lacks {', '.join(missing)}"
        return f"{self.name} finds no complete numerator/denominator pair"


def _aliases(name: str, values: list[str] | None) -> tuple[str, ...]:
    return (name, *(values or []))


def _check_aliases(path: Path, columns: dict, measures: dict) -> None:
    """One header may mean one thing only: an alias shared by two contract columns would
    make the contract itself guess. Denominators with the same alias list (occupied bed
    days for several measures) are one column and may be shared."""
    owner: dict[str, tuple] = {}
    roles: list[tuple[tuple[str, ...], list[str]]] = [
        ((c,), aliases) for c, aliases in columns.items()
    ]
    for code, pair in measures.items():
        roles.append(((code, "numerator"), pair["numerator"]))
        roles.append((("denominator", pair["denominator"]), pair["denominator"]))
    for role, aliases in roles:
        for alias in aliases:
            key = header_key(alias)
            if owner.setdefault(key, role) != role:
                raise ValueError(f"{path.name}: alias {alias!r} is used by two columns")


def _parse_contract(path: Path) -> SourceContract:
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
    _check_aliases(path, columns, measures)
    locale = spec.get("number_locale")
    if locale is not None and locale not in NUMBER_LOCALES:
        raise ValueError(
            f"{path.name}: number_locale {locale!r} is not one of {', '.join(NUMBER_LOCALES)}"
        )
    date_order = spec.get("date_order")
    if date_order is not None and date_order not in DATE_ORDERS:
        raise ValueError(f"{path.name}: date_order must be one of {', '.join(DATE_ORDERS)}")
    hidden_cells = spec.get("hidden_cells", "refuse")
    if hidden_cells not in HIDDEN_CELLS_POLICIES:
        raise ValueError(
            f"{path.name}: hidden_cells must be one of {', '.join(HIDDEN_CELLS_POLICIES)}"
        )
    return SourceContract(
        name=spec["name"],
        layout=layout,
        file_suffixes=tuple(s.lower() for s in spec.get("file_suffixes", [".csv"])),
        columns=columns,
        measures=measures,
        header_search_rows=int(spec.get("header_search_rows", 10)),
        number_format=NUMBER_LOCALES[locale] if locale else None,
        date_order=date_order,
        hidden_cells=hidden_cells,
        submitters=tuple(str(s).strip().upper() for s in spec.get("submitters") or []),
    )


@cache
def _load(directory: Path) -> tuple[SourceContract, ...]:
    return tuple(_parse_contract(path) for path in sorted(directory.glob("*.yml")))


def load_contracts(directory: Path | None = None) -> tuple[SourceContract, ...]:
    """Every contract in ``directory`` (default: the shipped ``source_contracts/``), in file
    name order. A malformed contract raises: it is a deployment error, not a provider's."""
    return _load(directory or CONTRACTS_DIR)


def match_contract(
    rows: list[list[str | None]], suffix: str, submitter: str | None = None
) -> tuple[ContractMatch | None, list[str]]:
    """The first contract whose header appears in the first rows: contracts limited to this
    submitter first, then the general ones (each group by file name order)."""
    problems = []
    contracts = load_contracts()
    own = [c for c in contracts if submitter and submitter in c.submitters]
    general = [c for c in contracts if not c.submitters]
    for contract in own + general:
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
