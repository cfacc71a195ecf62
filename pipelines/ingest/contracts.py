"""Declarative source contracts: how a provider layout maps onto the long measure row.

Adding a provider's layout is a new YAML file in ``source_contracts/``, not code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).parent / "source_contracts"


def header_key(name: str) -> str:
    """Compare headers the way people type them: case, spacing and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", name.replace("\ufeff", "").lower())


@dataclass(frozen=True)
class SourceContract:
    name: str
    layout: str
    file_suffixes: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]

    def match_columns(self, headers: list[str]) -> tuple[dict[str, str], list[str]]:
        """Map each contract column to the file header that carries it; list the missing ones."""
        by_key = {header_key(h): h for h in headers}
        found: dict[str, str] = {}
        missing: list[str] = []
        for column, aliases in self.columns.items():
            hit = next((by_key[header_key(a)] for a in aliases if header_key(a) in by_key), None)
            if hit is None:
                missing.append(column)
            else:
                found[column] = hit
        return found, missing


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> tuple[SourceContract, ...]:
    contracts = []
    for path in sorted(directory.glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        contracts.append(
            SourceContract(
                name=spec["name"],
                layout=spec["layout"],
                file_suffixes=tuple(s.lower() for s in spec.get("file_suffixes", [".csv"])),
                columns={k: (k, *v) for k, v in spec["columns"].items()},
            )
        )
    return tuple(contracts)
