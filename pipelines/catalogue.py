"""The measure catalogue: one source of truth shared by ingest (row rules) and dbt (a seed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import polars as pl

from pipelines.settings import PROJECT_ROOT

CATALOGUE_CSV = PROJECT_ROOT / "dbt_project" / "seeds" / "measure_catalogue.csv"


@dataclass(frozen=True)
class Measure:
    code: str
    name: str
    programme_code: str
    multiplier: int
    improvement_direction: str
    spc_chart: str
    is_proportion: bool
    target: float | None
    applies_to_sectors: tuple[str, ...]
    # Plausibility bounds, enforced at ingest: no numerator or denominator of one
    # organisation's month above ``max_count``; no value (numerator x multiplier /
    # denominator) above ``max_value``. They catch misreads (a pasted phone number, a
    # thousands point read as digits), not outliers: both sit far above any real month.
    max_count: int | None = None
    max_value: float | None = None
    # The baseline SPC limits rest on (docs/programme-impact.md section 2): a window of
    # months fixing segment 0's limits, or the first n points of every segment; neither:
    # all points. Checked at load (:func:`baseline_problems`).
    baseline_from: date | None = None
    baseline_to: date | None = None
    baseline_months: int | None = None
    # Where the figures come from: ``returns`` (providers send them; ingest accepts them)
    # or ``incidents`` (derived centrally from incident records; docs/incidents.md).
    source: str = "returns"
    # Where an incident rate's occupied bed days come from (docs/incidents.md, "Occupied bed
    # days"): ``kh03``, ``returns`` (the organisation's returned figure) or None (the
    # measure's own denominator). Checked at load (:func:`denominator_source_problems`).
    denominator_source: str | None = None


#: Fewer points than this cannot fix limits (NHSRplotthedots refuses fix_after_n_points < 12).
MIN_BASELINE_MONTHS = 12


class CatalogueError(ValueError):
    """The catalogue breaks a rule: every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _baseline_date(code: str, column: str, text: str | None, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        problems.append(f"measure {code}: {column} {text!r} is not a date as YYYY-MM-DD")
        return None
    if value.day != 1:
        problems.append(f"measure {code}: {column} {text!r} is not the first day of a month")
    return value


def baseline_problems(row: dict[str, str | None]) -> list[str]:
    """The baseline rules of docs/programme-impact.md section 2 for one catalogue row:
    a window needs both ends, first days of months, in order; baseline_months is a whole
    number of at least 12; a measure names one kind of baseline, not both."""
    code = str(row["measure_code"])
    problems: list[str] = []
    start = _baseline_date(code, "baseline_from", row.get("baseline_from"), problems)
    end = _baseline_date(code, "baseline_to", row.get("baseline_to"), problems)
    if bool(row.get("baseline_from")) != bool(row.get("baseline_to")):
        problems.append(f"measure {code}: give both baseline_from and baseline_to, or neither")
    if start and end and start > end:
        problems.append(f"measure {code}: baseline_from {start} is after baseline_to {end}")
    months = (row.get("baseline_months") or "").strip()
    if months:
        if not months.isdigit() or int(months) < MIN_BASELINE_MONTHS:
            problems.append(
                f"measure {code}: baseline_months {months!r} must be a whole number of at "
                f"least {MIN_BASELINE_MONTHS}"
            )
        if row.get("baseline_from") or row.get("baseline_to"):
            problems.append(f"measure {code}: name a baseline window or baseline_months, not both")
    return problems


#: Where a derived rate may take its occupied bed days from.
BED_DAY_SOURCES = ("kh03", "returns")


def denominator_source_problems(row: dict[str, str | None]) -> list[str]:
    """A named denominator source is one of :data:`BED_DAY_SOURCES`, on a measure derived
    centrally (``source = incidents``) whose denominator is occupied bed days: a returned
    measure carries its own denominator, and bed days cannot divide anything else."""
    code = str(row["measure_code"])
    named = (row.get("denominator_source") or "").strip()
    if not named:
        return []
    if named not in BED_DAY_SOURCES:
        return [
            f"measure {code}: denominator_source {named!r} must be one of "
            f"{', '.join(BED_DAY_SOURCES)} or blank"
        ]
    if row.get("source") != "incidents" or row.get("denominator_definition") != "Occupied bed days":
        return [
            f"measure {code}: denominator_source names where occupied bed days come from; "
            "only a derived (source incidents) per-bed-day measure takes one"
        ]
    return []


@cache
def load_catalogue(path: Path = CATALOGUE_CSV) -> dict[str, Measure]:
    """Measures keyed by code, read from the dbt seed so the two can never disagree.

    A baseline that breaks a rule raises :class:`CatalogueError` (every problem): limits
    resting on a malformed window would be silently wrong on every chart of the measure.
    """
    frame = pl.read_csv(path, infer_schema=False)
    problems = [
        p
        for row in frame.iter_rows(named=True)
        for p in (*baseline_problems(row), *denominator_source_problems(row))
    ]
    if problems:
        raise CatalogueError([f"{path.name}: {p}" for p in problems])
    return {
        row["measure_code"]: Measure(
            code=row["measure_code"],
            name=row["measure_name"],
            programme_code=row["programme_code"],
            multiplier=int(row["multiplier"]),
            improvement_direction=row["improvement_direction"],
            spc_chart=row["spc_chart"],
            is_proportion=row["is_proportion"].strip().lower() == "true",
            target=float(row["target"]) if row["target"] else None,
            applies_to_sectors=tuple((row["applies_to_sectors"] or "").split("|")),
            max_count=int(row["max_count"]) if row.get("max_count") else None,
            max_value=float(row["max_value"]) if row.get("max_value") else None,
            baseline_from=date.fromisoformat(row["baseline_from"])
            if row.get("baseline_from")
            else None,
            baseline_to=date.fromisoformat(row["baseline_to"]) if row.get("baseline_to") else None,
            baseline_months=int(row["baseline_months"]) if row.get("baseline_months") else None,
            source=row.get("source") or "returns",
            denominator_source=(row.get("denominator_source") or "").strip() or None,
        )
        for row in frame.iter_rows(named=True)
    }
