"""Done-when for the impact tables (docs/programme-impact.md section 4, issue 13): one full
run of the pipeline on the committed sample, whose planted story is described in
data_samples/generate.py, finds it.

Needs the spc branch's outputs (fct_spc segments, fct_series_change, dim_change and the
change register config/change_register.csv naming CHG-001 and CHG-002): until they are
merged this test fails at the impact step, by design.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import SAMPLES, SampleBuild

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def published(sample_build: SampleBuild) -> Path:
    """The published snapshot of the session's full run on the sample (read only)."""
    return sample_build.published_snapshot()


def _rows(warehouse, sql: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _landing_by_financial_year(measure: str) -> dict[str, tuple[int, int, int]]:
    """{financial year: (numerator, denominator, months)} for the whole region, straight from
    the sample's landing CSV files: the latest file received for each organisation, month
    and measure (a resubmission replaces the first), rows with whole counts only."""
    frames = [
        pl.read_csv(path, infer_schema=False).with_columns(received=pl.lit(path.parent.name))
        for path in sorted((SAMPLES / "landing").glob("*/*.csv"))
    ]
    rows = (
        pl.concat(frames, how="diagonal")
        .filter(pl.col("measure_code") == measure)
        .filter(pl.col("numerator").str.contains(r"^\d+$"))
        .filter(pl.col("denominator").str.contains(r"^\d+$"))
        .with_columns(pl.col("numerator", "denominator").cast(pl.Int64))
        .filter(pl.col("numerator") <= pl.col("denominator"))
        .sort("received")
        .unique(["org_code", "period", "measure_code"], keep="last")
        .with_columns(
            year=pl.col("period").str.slice(0, 4).cast(pl.Int32),
            month=pl.col("period").str.slice(5, 2).cast(pl.Int32),
        )
        .with_columns(fy=pl.col("year") - (pl.col("month") < 4).cast(pl.Int32))
    )
    totals = rows.group_by("fy").agg(
        pl.col("numerator").sum(), pl.col("denominator").sum(), pl.col("period").n_unique()
    )
    return {
        f"{fy}/{(fy + 1) % 100:02d}": (num, den, months)
        for fy, num, den, months in totals.iter_rows()
    }


def test_the_news2_improvement_is_found_at_region_level_and_follows_chg_001(published):
    [row] = _rows(
        published / "warehouse.duckdb",
        "select * from fct_programme_impact"
        " where level = 'region' and measure_code = 'NEWS2_ESCALATED'",
    )
    assert row["signal"] == "improvement"
    # The run may start up to 3 months before the change it follows (docs/programme-impact.md
    # section 4): in the sample, March 2024 already sits above the baseline mean.
    assert date(2024, 1, 1) <= row["signal_start"] <= date(2024, 4, 1)
    assert row["attributed_change_id"] == "CHG-001"
    assert row["improvement_abs"] > 0 and row["events_better"] > 0
    # The same shift at ICB and acute-trust sector level, from the same change.
    for level in ("icb", "sector"):
        [other] = _rows(
            published / "warehouse.duckdb",
            f"select signal, attributed_change_id from fct_programme_impact"
            f" where level = '{level}' and measure_code = 'NEWS2_ESCALATED'",
        )
        assert other == {"signal": "improvement", "attributed_change_id": "CHG-001"}, level


def test_the_sepsis_shift_is_unexplained(published):
    shifts = _rows(
        published / "warehouse.duckdb",
        "select signal, run_start from mart_unexplained_shifts"
        " where level = 'region' and measure_code = 'SEPSIS_ABX_1H'",
    )
    assert {"signal": "improvement", "run_start": date(2024, 7, 1)} in shifts
    # The NEWS2 shift follows CHG-001: it is not unexplained.
    assert not _rows(
        published / "warehouse.duckdb",
        "select * from mart_unexplained_shifts where level = 'region'"
        " and measure_code = 'NEWS2_ESCALATED' and run_start >= date '2024-04-01'",
    )


@pytest.mark.parametrize("measure", ["NEWS2_ESCALATED", "SEPSIS_ABX_1H", "PU_CAT2PLUS"])
def test_financial_year_figures_are_the_landing_files_summed(published, measure):
    [row] = _rows(
        published / "warehouse.duckdb",
        f"select i.*, m.multiplier from fct_programme_impact as i"
        f" join dim_measure as m using (measure_code)"
        f" where i.level = 'region' and i.measure_code = '{measure}'",
    )
    by_year = _landing_by_financial_year(measure)
    assert (row["fy_current"], row["fy_previous"]) == ("2024/25", "2023/24")
    for prefix in ("fy_current", "fy_previous"):
        numerator, denominator, months = by_year[row[prefix]]
        assert row[f"{prefix}_months"] == months == 12
        assert row[f"{prefix}_value"] == pytest.approx(numerator * row["multiplier"] / denominator)
    direction = {"increase": 1, "decrease": -1}[row["improvement_direction"]]
    assert row["fy_change_abs"] == pytest.approx(
        (row["fy_current_value"] - row["fy_previous_value"]) * direction
    )
