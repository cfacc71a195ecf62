"""The measure catalogue: one source of truth shared by ingest (row rules) and dbt (a seed)."""

from __future__ import annotations

from dataclasses import dataclass
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


@cache
def load_catalogue(path: Path = CATALOGUE_CSV) -> dict[str, Measure]:
    """Measures keyed by code, read from the dbt seed so the two can never disagree."""
    frame = pl.read_csv(path, infer_schema=False)
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
        )
        for row in frame.iter_rows(named=True)
    }
