"""A published snapshot for the board reports: the dashboard's fixture snapshot
(tests/dashboard/dashboard_fixtures.py) with this module's change register and the first
financial year as every measure's baseline window. The register and baselines go in before
SPC runs, so segments, ``dim_change`` / ``pub_change`` and ``fct_series_change`` /
``pub_series_change`` (without the organisation-scoped change) come from the real SPC step;
the impact tables (``fct_programme_impact``, ``pub_programme_impact`` with events rounded to
5, ``mart_unexplained_shifts``) are the dashboard fixture's stand-ins for the dbt models,
worked out from those real rows as docs/programme-impact.md section 4 describes.

The region's falls drop in Zedshire from mid-2024 (Sunnyside's falls fall to almost none):
a sustained improvement that follows CHG-002, the Zedshire falls bundle.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent.parent / "dashboard"))

from dashboard_fixtures import (
    MONTHS,
    ORGANISATIONS,
    make_published_warehouse,
    public_warehouse,
)

ORG_CODES = [code for code, _, sector, _ in ORGANISATIONS if sector != "icb"]
ORG_NAMES = [name for _, name, sector, _ in ORGANISATIONS if sector != "icb"]
BASELINE = (MONTHS[0], MONTHS[11])  # FY 2023/24

# change_id, change_date, programme, measure, scope, scope_code, kind, rebase, description
CHANGES = [
    ("CHG-001", date(2024, 6, 1), "local", "FALLS", "organisation", "RZZ01", "intervention",
     False, "Sunnyside Hospitals falls huddles on every ward"),
    ("CHG-002", date(2024, 5, 1), "local", "FALLS", "icb", "QZZ", "intervention", False,
     "Falls prevention bundle rolled out across Zedshire"),
    ("CHG-003", date(2023, 10, 1), "deterioration", "NEWS2", "region", None, "intervention",
     False, "Observation audit added to the regional dashboard"),
]  # fmt: skip
#: A public row whose derived event counts are small: the report must not print them.
SMALL_EVENTS_SERIES = ("sector", "QZZ|acute_trust", "FALLS")


def make_report_warehouse(path: Path, *, impact: bool = True) -> Path:
    """The dashboard fixture's snapshot at ``path`` (internal) and beside it (public), with
    this module's register and baselines, and the programme-impact tables (``impact=False``:
    without them, as before the programme-impact models exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_published_warehouse(
        path,
        changes=CHANGES,
        baseline_window={"FALLS": BASELINE, "NEWS2": BASELINE},
        baseline_months={},
        impact=impact,
    )
    if impact:
        # Plant a small event count in the public table (as rounding can leave one).
        level, key, measure = SMALL_EVENTS_SERIES
        with duckdb.connect(str(public_warehouse(path))) as con:
            con.execute(
                """update pub_programme_impact set excess_events = 5, events_better = -5
                where level = ? and series_key = ? and measure_code = ?""",
                [level, key, measure],
            )
            assert con.fetchone()[0] == 1, SMALL_EVENTS_SERIES
    return path


__all__ = ["MONTHS", "ORG_CODES", "ORG_NAMES", "make_report_warehouse", "public_warehouse"]
