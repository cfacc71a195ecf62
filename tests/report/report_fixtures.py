"""A published snapshot for the board reports: the dashboard's fixture snapshot
(tests/dashboard/dashboard_fixtures.py) plus the tables docs/programme-impact.md names, with
figures worked out from its own SPC rows as §4 describes (simplified where the fixture's
SPC has no segments: one segment, the first financial year as the baseline window):

* internal file: ``fct_programme_impact``, ``dim_change``, ``fct_series_change``;
* public file: ``pub_programme_impact`` (events rounded to 5), ``pub_change`` and
  ``pub_series_change`` without the organisation-scoped change.

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
LAST_12 = (MONTHS[12], MONTHS[23])  # FY 2024/25
ATTRIBUTION_WINDOW = 6
COUNT_CHARTS = {"p", "u", "p_prime", "u_prime"}

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


def _applies(change: tuple, level: str, org: str | None, sector: str | None, icb: str | None):
    """docs/programme-impact.md §1: which series a change applies to."""
    scope, code = change[4], change[5]
    if scope == "region":
        return True
    if scope == "icb":
        return level in ("organisation", "sector", "icb") and icb == code
    if scope == "sector":
        return level in ("organisation", "sector") and sector == code
    return level == "organisation" and org == code


def _pooled(points: list[dict], multiplier: float, first: date, last: date):
    chosen = [p for p in points if first <= p["period"] <= last and p["numerator"] is not None]
    num = sum(p["numerator"] for p in chosen)
    den = sum(p["denominator"] for p in chosen)
    return (num * multiplier / den if den else None), num, den, len(chosen)


def _round(value: float | None, base: int | None) -> float | None:
    if value is None or base is None:
        return value
    return float(round(value / base) * base)


def _impact_rows(con: duckdb.DuckDBPyConnection, source: str, tier: str) -> list[dict]:
    measures = {
        code: (multiplier, direction, chart)
        for code, multiplier, direction, chart in con.execute(
            "select measure_code, multiplier, improvement_direction, spc_chart from dim_measure"
        ).fetchall()
    }
    rows = con.execute(
        f"""select level, series_key, {"org_code" if tier == "internal" else "null"},
                   sector_code, icb_code, programme_code, measure_code, period, numerator,
                   denominator, value, lpl, upl, centre, point_type
            from {source} order by level, series_key, measure_code, period"""
    ).fetchall()
    series: dict[tuple, list[dict]] = {}
    for row in rows:
        (level, key, org, sector, icb, programme, measure, period, num, den, value, lpl, upl,
         centre, point_type) = row  # fmt: skip
        series.setdefault((level, key, measure, org, sector, icb, programme), []).append(
            dict(
                period=period,
                numerator=num,
                denominator=den,
                value=value,
                lpl=lpl,
                upl=upl,
                centre=centre,
                point_type=point_type,
            )
        )
    base = 5 if tier == "public" else None
    out = []
    for (level, key, measure, org, sector, icb, programme), points in series.items():
        multiplier, direction, chart = measures[measure]
        sign = {"higher": 1, "lower": -1}.get(direction, 0)
        baseline, b_num, b_den, b_points = _pooled(points, multiplier, *BASELINE)
        last_12, l_num, l_den, _ = _pooled(points, multiplier, *LAST_12)
        if baseline is None or last_12 is None:
            continue
        improvement = (last_12 - baseline) * sign
        # The shift rule on the latest points: the run of special-cause points that ends at
        # the last one (the fixture's SPC has a single segment).
        signal, start = None, None
        if points[-1]["point_type"] in ("special_cause_improvement", "special_cause_concern"):
            run = 0
            for point in reversed(points):
                if point["point_type"] != points[-1]["point_type"]:
                    break
                run, start = run + 1, point["period"]
            if run >= 7:
                signal = points[-1]["point_type"].rsplit("_", 1)[1]
            else:
                start = None
        attributed = None
        if start is not None:
            window = start.year * 12 + start.month - 1 - ATTRIBUTION_WINDOW
            candidates = [
                c
                for c in CHANGES
                if c[3] == measure
                and _applies(c, level, org, sector, icb)
                and window <= c[1].year * 12 + c[1].month - 1
                and c[1] <= start
                and (tier == "internal" or c[4] != "organisation")
            ]
            attributed = max(candidates, key=lambda c: c[1]) if candidates else None
        expected = observed = excess = better = None
        if chart in COUNT_CHARTS:
            expected = _round(l_den * b_num / b_den, base)
            observed = _round(float(l_num), base)
            excess = _round(l_num - l_den * b_num / b_den, base)
            better = excess * sign
        if tier == "public" and (level, key, measure) == SMALL_EVENTS_SERIES:
            excess, better = 5.0, -5.0
        out.append(
            dict(
                level=level,
                series_key=key,
                org_code=org,
                sector_code=sector,
                icb_code=icb,
                programme_code=programme,
                measure_code=measure,
                chart=chart,
                improvement_direction={"higher": "increase", "lower": "decrease"}.get(
                    direction, "neutral"
                ),
                baseline_from=BASELINE[0],
                baseline_to=BASELINE[1],
                baseline_points=b_points,
                baseline_mean=baseline,
                baseline_lpl=points[0]["lpl"],
                baseline_upl=points[0]["upl"],
                current_segment_start=points[0]["period"],
                current_mean=points[-1]["centre"],
                current_lpl=points[-1]["lpl"],
                current_upl=points[-1]["upl"],
                last_12_from=LAST_12[0],
                last_12_to=LAST_12[1],
                last_12_value=last_12,
                improvement_abs=improvement,
                improvement_rel=improvement / baseline if baseline else None,
                signal=signal,
                signal_start=start,
                attributed_change_id=attributed[0] if attributed else None,
                attributed_change_description=attributed[8] if attributed else None,
                fy_current=2024,
                fy_current_months=12,
                fy_current_value=last_12,
                fy_previous=2023,
                fy_previous_months=12,
                fy_previous_value=baseline,
                fy_change_abs=last_12 - baseline,
                expected_events=expected,
                observed_events=observed,
                excess_events=excess,
                events_better=better,
            )
        )
    return out


def _write(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    con.execute(f"create table {table} as select * from (select unnest(?, recursive := true))",
                [rows])  # fmt: skip


def _series_change_rows(con, source: str, tier: str) -> list[dict]:
    spans = con.execute(
        f"""select level, series_key, measure_code,
                   {"any_value(org_code)" if tier == "internal" else "null"},
                   any_value(sector_code), any_value(icb_code), min(period), max(period)
            from {source} group by all"""
    ).fetchall()
    rows = []
    for level, key, measure, org, sector, icb, first, last in spans:
        for change in CHANGES:
            if tier == "public" and change[4] == "organisation":
                continue
            applies = change[3] == measure and _applies(change, level, org, sector, icb)
            if applies and first <= change[1] <= last:
                rows.append(
                    dict(
                        level=level,
                        tier=tier,
                        series_key=key,
                        measure_code=measure,
                        change_id=change[0],
                        change_month=change[1],
                        kind=change[6],
                        rebases=False,
                    )
                )
    return rows


def _change_rows(public: bool) -> list[dict]:
    keys = ("change_id", "change_date", "programme_code", "measure_code", "scope",
            "scope_code", "kind", "rebase", "description")  # fmt: skip
    shown = [c for c in CHANGES if not (public and c[4] == "organisation")]
    return [dict(zip(keys, c, strict=True)) for c in shown]


def make_report_warehouse(path: Path, *, impact: bool = True) -> Path:
    """The dashboard fixture's snapshot at ``path`` (internal) and beside it (public), with
    the programme-impact tables added (``impact=False``: without them, as before the
    programme-impact models exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_published_warehouse(path)
    if not impact:
        return path
    with duckdb.connect(str(path)) as con:
        internal = "fct_spc where tier = 'internal'"
        _write(con, "fct_programme_impact", _impact_rows(con, internal, "internal"))
        _write(con, "dim_change", _change_rows(public=False))
        _write(con, "fct_series_change", _series_change_rows(con, internal, "internal"))
    with duckdb.connect(str(public_warehouse(path))) as con:
        _write(con, "pub_programme_impact", _impact_rows(con, "pub_spc", "public"))
        _write(con, "pub_change", _change_rows(public=True))
        _write(con, "pub_series_change", _series_change_rows(con, "pub_spc", "public"))
    return path


__all__ = ["MONTHS", "ORG_CODES", "ORG_NAMES", "make_report_warehouse", "public_warehouse"]
