"""The change register: read and validate the analysts' CSV of recorded changes.

The rules are docs/programme-impact.md section 1. A bad register stops the run before
anything is written (:func:`pipelines.settings.validated_settings` calls
:func:`register_problems`), with one line per problem naming the file, the row as a
spreadsheet shows it (header = row 1) and the rule, so an analyst can fix the file without
reading code. dbt reads the same file (``stg_config__change_register``); this module is the
gate that makes what dbt reads trustworthy.

Each row is a pydantic model: types, allowed values and the rules between columns live in
one declaration; the codes are checked against the catalogue, the programmes and sectors
seeds and England's ICBs, passed in as validation context.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines.catalogue import load_catalogue
from pipelines.settings import ENGLAND_ICBS, PROJECT_ROOT, Settings

COLUMNS: tuple[str, ...] = (
    "change_id",
    "change_date",
    "programme_code",
    "measure_code",
    "scope",
    "scope_code",
    "kind",
    "rebase",
    "description",
)
SCOPES: tuple[str, ...] = ("region", "icb", "sector", "organisation")
KINDS: tuple[str, ...] = ("intervention", "definition_change", "data_collection_change")
MAX_DESCRIPTION = 200
CHANGE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# ODS organisation codes (trusts RR7, sites and care homes of 5, GP practices A81001) and
# the local register's own codes: letters and digits. The register of organisations is
# built in the run, so only the form can be checked here.
ORG_CODE = re.compile(r"[A-Z0-9]{3,10}")
SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"


@dataclass(frozen=True)
class Codes:
    """What a register row's codes may be (the validation context)."""

    measures: dict[str, str]  # measure code -> its programme
    programmes: frozenset[str]
    sectors: frozenset[str]
    icbs: frozenset[str]  # the region's ICBs (all of England's for ENGLAND)


def _seed_codes(name: str, column: str) -> frozenset[str]:
    with (SEEDS / name).open(newline="", encoding="utf-8") as handle:
        return frozenset(row[column] for row in csv.DictReader(handle))


@cache
def _reference() -> tuple[frozenset[str], frozenset[str]]:
    return _seed_codes("programmes.csv", "programme_code"), _seed_codes(
        "sectors.csv", "sector_code"
    )


def codes_for(settings: Settings) -> Codes:
    """The codes a register row may name in this deployment."""
    programmes, sectors = _reference()
    icbs = ENGLAND_ICBS if settings.all_england else frozenset(settings.region_icbs)
    return Codes(
        measures={code: m.programme_code for code, m in load_catalogue().items()},
        programmes=programmes,
        sectors=sectors,
        icbs=icbs,
    )


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class Change(BaseModel):
    """One validated register row; ``rebase`` has its default applied (section 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    change_id: str
    change_date: date
    programme_code: str | None
    measure_code: str | None
    scope: str
    scope_code: str | None
    kind: str
    rebase: bool
    description: str

    @property
    def change_month(self) -> date:
        return self.change_date.replace(day=1)

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("change_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CHANGE_ID.fullmatch(value):
            raise ValueError(
                f"change_id {value!r} must be 1 to 32 letters, digits, '-' or '_'"
                if value
                else "change_id is required"
            )
        return value

    @field_validator("change_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError("change_date is required (YYYY-MM-DD)")
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    raise ValueError
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"change_date {value!r} is not a date as YYYY-MM-DD") from None
        return value

    @field_validator("programme_code", "measure_code", "scope_code", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        if value not in SCOPES:
            raise ValueError(f"scope {value!r} is not one of {', '.join(SCOPES)}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"kind {value!r} is not one of {', '.join(KINDS)}")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if not value:
            raise ValueError("description is required")
        if len(value) > MAX_DESCRIPTION:
            raise ValueError(
                f"description is {len(value)} characters; at most {MAX_DESCRIPTION} allowed"
            )
        if "\n" in value or "\r" in value:
            raise ValueError("description must be one line")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_rebase(cls, data: Any) -> Any:
        """Blank rebase: false for an intervention (its new limits would absorb the very
        improvement the chart should show), true for a definition or collection change."""
        if not isinstance(data, dict):
            return data
        raw = data.get("rebase")
        text = raw.strip().lower() if isinstance(raw, str) else raw
        if text in (None, ""):
            kind = (data.get("kind") or "").strip() if isinstance(data.get("kind"), str) else ""
            return {**data, "rebase": kind != "intervention"}
        if text not in ("true", "false", True, False):
            raise ValueError(f"rebase {raw!r} is not true, false or blank")
        return {**data, "rebase": text in ("true", True)}

    @model_validator(mode="after")
    def _codes(self, info: ValidationInfo) -> Change:
        """Codes that exist, in the right combination (the context says what exists)."""
        codes: Codes | None = (info.context or {}).get("codes")
        problems = []
        if self.scope == "region":
            if self.scope_code is not None:
                problems.append(f"scope_code {self.scope_code!r} must be blank for scope region")
        elif self.scope_code is None:
            problems.append(f"scope_code is required for scope {self.scope}")
        elif self.scope == "organisation" and not ORG_CODE.fullmatch(self.scope_code):
            problems.append(
                f"scope_code {self.scope_code!r} is not an organisation code "
                "(3 to 10 upper-case letters and digits)"
            )
        if codes is not None:
            if self.programme_code is not None and self.programme_code not in codes.programmes:
                problems.append(
                    f"programme_code {self.programme_code!r} is not a programme in programmes.csv"
                )
            if self.measure_code is not None:
                programme = codes.measures.get(self.measure_code)
                if programme is None:
                    problems.append(
                        f"measure_code {self.measure_code!r} is not in the measure catalogue"
                    )
                elif self.programme_code is not None and programme != self.programme_code:
                    problems.append(
                        f"measure_code {self.measure_code!r} is in programme {programme!r}, "
                        f"not {self.programme_code!r}"
                    )
            if (
                self.scope == "icb"
                and self.scope_code is not None
                and self.scope_code not in codes.icbs
            ):
                problems.append(
                    f"scope_code {self.scope_code!r} is not one of the region's ICBs "
                    f"({', '.join(sorted(codes.icbs)) if len(codes.icbs) < 10 else 'England'})"
                )
            if (
                self.scope == "sector"
                and self.scope_code is not None
                and self.scope_code not in codes.sectors
            ):
                problems.append(f"scope_code {self.scope_code!r} is not a sector in sectors.csv")
        if problems:
            raise ValueError("\n".join(problems))  # one line each, split in _messages
        return self


class RegisterError(Exception):
    """The register cannot be used: every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def shown_path(path: Path) -> str:
    """The file as the analyst knows it: relative to the project when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _messages(error: ValidationError) -> list[str]:
    """pydantic's errors as the rules' own words: our validators' messages as written,
    a built-in error prefixed with its column."""
    lines = []
    for item in error.errors():
        if item["type"] == "value_error":
            lines.extend(str(item["ctx"]["error"]).split("\n"))
        else:
            column = ".".join(str(p) for p in item["loc"])
            lines.append(f"{column} {item['msg']}".strip())
    return lines


def parse_register(path: Path, codes: Codes | None = None) -> tuple[list[Change], list[str]]:
    """Every valid change of the file and every problem (``<file> row <n>: <rule>``)."""
    name = shown_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return [], [f"{name}: cannot be read as UTF-8 text ({error.__class__.__name__})"]
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return [], [f"{name}: empty file; the header row is required ({','.join(COLUMNS)})"]
    header = [cell.strip() for cell in rows[0]]
    if header != list(COLUMNS):
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)}" if extra else "",
            )
            if part
        )
        return [], [
            f"{name} row 1: the header must be {','.join(COLUMNS)}"
            + (f" ({detail})" if detail else " (in that order)")
        ]
    changes: list[Change] = []
    problems: list[str] = []
    first_row: dict[str, int] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{name} row {number}"
        if len(cells) != len(COLUMNS):
            problems.append(
                f"{where}: {len(cells)} fields, expected {len(COLUMNS)} "
                "(quote a description that holds a comma)"
            )
            continue
        try:
            change = Change.model_validate(
                dict(zip(COLUMNS, cells, strict=True)), context={"codes": codes}
            )
        except ValidationError as error:
            problems.extend(f"{where}: {line}" for line in _messages(error))
            continue
        if change.change_id in first_row:
            problems.append(
                f"{where}: change_id {change.change_id!r} is already used on row "
                f"{first_row[change.change_id]}"
            )
            continue
        first_row[change.change_id] = number
        changes.append(change)
    return changes, problems


def register_problems(path: Path, settings: Settings) -> list[str]:
    """One line per problem of the register at ``path`` (empty: good to use)."""
    if not Path(path).is_file():
        return [f"{shown_path(path)}: change register file does not exist"]
    return parse_register(path, codes_for(settings))[1]


def read_register(path: Path, settings: Settings) -> list[Change]:
    """The validated changes, or :class:`RegisterError` with every problem."""
    changes, problems = parse_register(path, codes_for(settings))
    if problems:
        raise RegisterError(problems)
    return changes
