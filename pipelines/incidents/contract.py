"""Incident source contracts and the LFPSE v5 code lists they are checked against.

A contract (``pipelines/ingest/source_contracts/incidents/*.yml``) names the layout's
columns by an ALLOW-LIST (``keep``): the only columns ever read. Anything else in the file,
under whatever name, is dropped before a value of it is looked at, so a new column of
names or notes added by a provider can never reach a table. ``values`` maps a layout's
local codes to LFPSE codes; an unmapped code is quarantined, never guessed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "ingest" / "source_contracts" / "incidents"
# The code lists are dbt seeds (dbt_project/seeds/lfpse/lfpse_<list>.csv): one copy, read by
# ingest to check codes and by the marts to label them.
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "lfpse"

# Every field a contract may keep: the warehouse has a column for each and for nothing else.
FIELDS = (
    "event_ref",
    "revision",
    "taxonomy_version",
    "submitted_on",
    "event_date",
    "org_code",
    "reporter_org_code",
    "event_type",
    "category",
    "subcategory",
    "service_area",
    "location",
    "specialty",
    "agents",
    "patient_no",
    "physical_harm",
    "psychological_harm",
    "age_band",
)
# Warehouse codes of the fields that are not LFPSE code lists.
EVENT_TYPES = ("incident", "outcome", "risk", "good_care")
CATEGORIES = (
    "falls",
    "medication",
    "device",
    "pressure_ulcer",
    "infection",
    "diagnosis",
    "treatment",
    "access_admission_discharge",
    "behaviour",
    "documentation",
    "other",
)
# Field -> the LFPSE v5 code list its (mapped) values must come from.
CODE_LISTS = {
    "service_area": "service-type",
    "location": "incident-location",
    "specialty": "specialty",
    "agents": "agent-type",
    "physical_harm": "level-of-physical-harm",
    "psychological_harm": "level-of-psychological-harm",
    "age_band": "age-brackets",
}


class ContractError(ValueError):
    """A contract file that cannot be used (a programming error in the repository)."""


@dataclass(frozen=True)
class IncidentContract:
    name: str
    layout: str
    file_suffixes: tuple[str, ...]
    header_search_rows: int
    keep: dict[str, tuple[str, ...]]  # field -> header aliases (normalised)
    required: tuple[str, ...]
    revisions: bool
    organisation_from_submitter: bool
    taxonomy_versions: tuple[str, ...]
    values: dict[str, dict[str, str]]  # field -> normalised local value -> code


def normalise_header(text: str) -> str:
    """Headers match ignoring case, spaces, underscores and punctuation."""
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


def normalise_value(text: str) -> str:
    """Local codes match ignoring case and surrounding spaces."""
    return str(text).strip().upper()


def _parse(path: Path) -> IncidentContract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    keep = raw.get("keep") or {}
    unknown = set(keep) - set(FIELDS)
    if unknown:
        raise ContractError(
            f"{path.name}: keep names fields the warehouse has no column for: {sorted(unknown)}"
        )
    required = tuple(raw.get("required") or ())
    if set(required) - set(keep):
        raise ContractError(
            f"{path.name}: required fields must be kept: {sorted(set(required) - set(keep))}"
        )
    values = {
        field: {normalise_value(k): str(v) for k, v in mapping.items()}
        for field, mapping in (raw.get("values") or {}).items()
    }
    if set(values) - set(keep):
        raise ContractError(
            f"{path.name}: value maps for fields not kept: {sorted(set(values) - set(keep))}"
        )
    return IncidentContract(
        name=raw["name"],
        layout=raw["layout"],
        file_suffixes=tuple(raw.get("file_suffixes") or (".csv", ".xlsx")),
        header_search_rows=int(raw.get("header_search_rows", 10)),
        keep={f: tuple(normalise_header(a) for a in aliases) for f, aliases in keep.items()},
        required=required,
        revisions=bool(raw.get("revisions", False)),
        organisation_from_submitter=raw.get("organisation_from") == "submitter",
        taxonomy_versions=tuple(str(v) for v in raw.get("taxonomy_versions") or ()),
        values=values,
    )


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> tuple[IncidentContract, ...]:
    """Every incident contract, in file-name order."""
    return tuple(_parse(path) for path in sorted(directory.glob("*.yml")))


@cache
def code_list(name: str) -> dict[str, str]:
    """An LFPSE v5 code list: code -> display label."""
    file_name = "lfpse_" + name.replace("-", "_") + ".csv"
    with (REFERENCE_DIR / file_name).open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row["display"] for row in csv.DictReader(handle)}
