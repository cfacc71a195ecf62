"""A small published snapshot built by hand, with names that are easy to search for: the
internal tier's warehouse (the dimensions, the four fact marts, ``fct_spc``) and the public
tier's own file beside it (``public/warehouse.duckdb``: public dimensions, ``dim_icb``, the
disclosure-controlled tables and ``pub_spc``), as the publication writes them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from pipelines.defs.spc import (
    iter_spc_and_series_changes,
    write_fct_spc,
    write_pub_spc,
    write_series_change,
)

MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(24)]

PROGRAMMES = [
    ("deterioration", "Managing deterioration", True, 1),
    ("local", "Local priorities", False, 2),
    ("culture", "Safety culture", True, 3),  # no measures: the page must still say so
]
SECTORS = [("acute_trust", "Acute trust", "NHS trust", 1), ("care_home", "Care home", "Social", 7)]
# code, name, programme, multiplier, unit, direction, chart, target
MEASURES = [
    ("NEWS2", "Observations on time", "deterioration", 100, "%", "higher", "p_prime", 90.0),
    ("FALLS", "Falls with harm", "local", 1000, "per 1000 occupied bed days", "lower",
     "u_prime", None),
    ("EMPTY", "A measure nobody has sent yet", "local", 100, "%", "higher", "p_prime", None),
]  # fmt: skip
# code, name, sector, icb
ORGANISATIONS = [
    ("RZZ01", "SUNNYSIDE HOSPITALS NHS TRUST", "acute_trust", "QZZ"),
    ("RZZ02", "HILLTOP HEALTHCARE NHS FOUNDATION TRUST", "acute_trust", "QZZ"),
    ("VZZ01", "MEADOWVIEW CARE HOME", "care_home", "QZZ"),
    ("RYY01", "RIVERSIDE NHS TRUST", "acute_trust", "QYY"),
    ("QZZ", "NHS ZEDSHIRE INTEGRATED CARE BOARD", "icb", None),
    ("QYY", "NHS WYESHIRE INTEGRATED CARE BOARD", "icb", None),
]
ORG_NAMES_SHOWN = ["Sunnyside Hospitals", "Hilltop Healthcare", "Meadowview", "Riverside"]


def _facts() -> list[tuple]:
    wobble = [0, 2, -1, 1, -2, 1, 0, -1, 2, -2, 1, 0]
    rows = []
    for code, _, sector, icb in ORGANISATIONS:
        if sector == "icb":
            continue
        for i, month in enumerate(MONTHS):
            if code == "VZZ01" and i == 23:
                continue  # the care home's March return is late
            beds = 3000 + 10 * (i % 5)
            falls = 2 if code == "RZZ01" and i >= 15 else 12 + wobble[(i + len(code)) % 12]
            rows.append((code, "FALLS", month, sector, icb, "local", falls, beds, 1000))
            if sector == "acute_trust":
                audited = 40 + i % 3
                on_time = audited - 3 - (i + int(code[-1])) % 4
                rows.append((code, "NEWS2", month, sector, icb, "deterioration", on_time, audited,
                             100))  # fmt: skip
    return rows


def public_warehouse(internal: Path) -> Path:
    """The public tier's file of the snapshot whose internal file is ``internal``."""
    return internal.parent / "public" / "warehouse.duckdb"


# (public table, internal roll-up, keys) for the disclosure-controlled tables.
_PUBLIC_TABLES = [
    ("pub_measure_by_sector_monthly", "fct_measure_by_sector_monthly", "icb_code, sector_code,"),
    ("pub_measure_by_icb_monthly", "fct_measure_by_icb_monthly", "icb_code,"),
    ("pub_measure_by_region_monthly", "fct_measure_by_programme_monthly", ""),
]
_LEVEL = {
    "pub_measure_by_sector_monthly": "sector",
    "pub_measure_by_icb_monthly": "icb",
    "pub_measure_by_region_monthly": "region",
}


def make_published_warehouse(
    path: Path,
    suppress: list[tuple[str, str, date]] = (),
    with_changes: bool = True,
    *,
    changes: list[tuple] | None = None,
    baseline_window: dict[str, tuple[date, date]] | None = None,
    baseline_months: dict[str, int] | None = None,
    impact: bool = True,
) -> Path:
    """Write the snapshot's internal file at ``path`` (tables in ``main``) and its public
    file at :func:`public_warehouse` (``path``). Public counts are rounded to 5, with 1-7
    suppressed (simplified: no secondary suppression) and the (level, measure, month) cells
    in ``suppress`` suppressed too; SPC runs on them as the ``fct_spc`` asset runs it.
    ``with_changes``: also the change register (``changes``, default :data:`CHANGES`) and
    the catalogue's baselines (default :data:`BASELINE_WINDOW`, :data:`BASELINE_MONTHS`)
    before SPC runs, so fct_spc's segments and fct_series_change come from the real SPC
    step, and (``impact``) the impact tables (:func:`add_impact`); without, a snapshot from
    before they existed."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table dim_programme (programme_code varchar, programme_name varchar, "
            "is_national_programme boolean, sort_order integer)"
        )
        con.executemany("insert into dim_programme values (?, ?, ?, ?)", PROGRAMMES)
        con.execute(
            "create table dim_sector (sector_code varchar, sector_name varchar, "
            "sector_group varchar, sort_order integer)"
        )
        con.executemany("insert into dim_sector values (?, ?, ?, ?)", SECTORS)
        con.execute(
            """create table dim_measure (measure_code varchar, measure_name varchar,
            programme_code varchar, numerator_definition varchar, denominator_definition varchar,
            multiplier integer, unit varchar, improvement_direction varchar, measure_type varchar,
            spc_chart varchar, is_proportion boolean, target double, applies_to_sectors varchar)"""
        )
        con.executemany(
            "insert into dim_measure values (?, ?, ?, 'Numerator text', 'Denominator text', "
            "?, ?, ?, 'outcome', ?, true, ?, 'acute_trust')",
            MEASURES,
        )
        if with_changes:
            _add_baselines_and_register(
                con,
                CHANGES if changes is None else changes,
                BASELINE_WINDOW if baseline_window is None else baseline_window,
                BASELINE_MONTHS if baseline_months is None else baseline_months,
            )
        con.execute(
            "create table dim_organisation (org_code varchar, org_name varchar, "
            "sector_code varchar, icb_code varchar)"
        )
        con.executemany("insert into dim_organisation values (?, ?, ?, ?)", ORGANISATIONS)
        con.execute(
            """create table dim_icb as select org_code as icb_code, org_name as icb_name
            from dim_organisation where sector_code = 'icb'"""
        )
        con.execute(
            """create table fct_measure_monthly (org_code varchar, measure_code varchar,
            period date, sector_code varchar, icb_code varchar, programme_code varchar,
            numerator bigint, denominator bigint, multiplier integer)"""
        )
        con.executemany(
            "insert into fct_measure_monthly values (?, ?, ?, ?, ?, ?, ?, ?, ?)", _facts()
        )
        con.execute(
            """alter table fct_measure_monthly add column value double;
            update fct_measure_monthly set value = numerator * multiplier / denominator"""
        )
        rollups = {
            "fct_measure_by_sector_monthly": "icb_code, sector_code,",
            "fct_measure_by_icb_monthly": "icb_code,",
            "fct_measure_by_programme_monthly": "",
        }
        for table, keys in rollups.items():
            con.execute(
                f"""create table {table} as
                select {keys} measure_code, period, programme_code,
                       count(*) as organisations_reporting,
                       sum(numerator)::bigint as numerator, sum(denominator)::bigint as denominator,
                       sum(numerator) * max(multiplier) / sum(denominator) as value
                from fct_measure_monthly group by all"""
            )
        con.execute("create schema if not exists public")
        con.execute("create temp table forced (level varchar, measure_code varchar, period date)")
        if suppress:
            con.executemany("insert into forced values (?, ?, ?)", list(suppress))
        for public, source, keys in _PUBLIC_TABLES:
            con.execute(
                f"""create table public.{public} as
                with cells as (
                    select s.*, (s.numerator between 1 and 7 or s.denominator between 1 and 7
                                 or exists (select 1 from forced f where f.level = ?
                                            and f.measure_code = s.measure_code
                                            and f.period = s.period)) as is_suppressed,
                           cast(round(s.numerator / 5) * 5 as bigint) as n,
                           cast(round(s.denominator / 5) * 5 as bigint) as d,
                           m.multiplier
                    from {source} s join dim_measure m using (measure_code)
                )
                select {keys} measure_code, period, programme_code,
                       case when not is_suppressed then n end as numerator,
                       case when not is_suppressed then d end as denominator,
                       case when not is_suppressed and d > 0 then n * multiplier / d end
                           as value,
                       is_suppressed,
                       case when is_suppressed then 'primary' end as suppression_reason
                from cells""",
                [_LEVEL[public]],
            )
        # The real SPC step: segments, baselines and fct_series_change / pub_series_change
        # from the register and the catalogue's baselines (none without ``with_changes``).
        spc, series_change = [], []
        for frame, changes in iter_spc_and_series_changes(con, "main", "public"):
            spc.append(frame)
            series_change.append(changes)
        write_fct_spc(con, spc, "fct_spc")
        write_pub_spc(con, source="main.fct_spc", table="public.pub_spc")
        public_extra: tuple[str, ...] = ()
        if with_changes:
            write_series_change(
                con, pl.concat(series_change), "fct_series_change", "public.pub_series_change"
            )
            public_extra = ("pub_change", "pub_series_change")
            if impact:
                add_impact(con)
                public_extra += ("pub_programme_impact",)
        public_file = public_warehouse(path)
        public_file.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"attach '{public_file}' as public_tier")
        for table in ("dim_programme", "dim_sector", "dim_measure", "dim_icb"):
            con.execute(f"create table public_tier.main.{table} as select * from main.{table}")
        for table in (*(t for t, _, _ in _PUBLIC_TABLES), "pub_spc", *public_extra):
            con.execute(f"create table public_tier.main.{table} as select * from public.{table}")
        con.execute("detach public_tier")
        # The internal snapshot has fct_spc (both tiers' rows) but no public tables.
        con.execute("drop schema public cascade")
    return path


# ---------------------------------------------------------------------------------------------
# Recorded changes, segments and impact (docs/programme-impact.md). The register (dim_change,
# pub_change) and the catalogue's baselines go in before SPC runs, so the segment columns of
# fct_spc / pub_spc and fct_series_change / pub_series_change come from the real SPC step.
# Only the impact tables (fct_programme_impact, pub_programme_impact,
# mart_unexplained_shifts: dbt models) are stand-ins, worked out here from the real fct_spc
# and fct_series_change rows with the rules of that page's section 4.

# change_id, change_date, programme, measure, scope, scope_code, kind, rebase, description
CHANGES = [
    ("CHG-001", date(2024, 4, 15), "local", "FALLS", "region", None, "intervention", False,
     "Falls prevention bundle launched across the region"),
    ("CHG-002", date(2024, 10, 1), "deterioration", "NEWS2", "region", None,
     "definition_change", True, "NEWS2 audit widened from a sample to every eligible patient"),
    ("CHG-003", date(2024, 7, 1), "local", "FALLS", "organisation", "RZZ01", "intervention",
     False, "Sunnyside Hospitals: hourly rounding on the frailty ward"),
    ("CHG-004", date(2024, 1, 1), "local", "FALLS", "icb", "QYY", "data_collection_change",
     True, "Wyeshire moved falls reporting to the new incident system"),
]  # fmt: skip
#: FALLS names a baseline window (the year before the programme), NEWS2 the first 12 points.
BASELINE_WINDOW = {"FALLS": (date(2023, 4, 1), date(2024, 3, 1))}
BASELINE_MONTHS = {"NEWS2": 12}
ATTRIBUTION_MONTHS = 6
ATTRIBUTION_MONTHS_AFTER = 3

_CHANGE_COLUMNS = """change_id varchar, change_date date, change_month date,
    programme_code varchar, measure_code varchar, scope varchar, scope_code varchar,
    kind varchar, rebase boolean, description varchar"""


def _add_baselines_and_register(
    con,
    changes: list[tuple],
    baseline_window: dict[str, tuple[date, date]],
    baseline_months: dict[str, int],
) -> None:
    """The catalogue's baseline columns on ``dim_measure`` and the register as dbt builds
    it (``main.dim_change``; ``public.pub_change`` without organisation-scoped rows)."""
    con.execute(
        "alter table dim_measure add column baseline_from date;"
        "alter table dim_measure add column baseline_to date;"
        "alter table dim_measure add column baseline_months integer"
    )
    for code, (start, end) in baseline_window.items():
        con.execute(
            "update dim_measure set baseline_from = ?, baseline_to = ? where measure_code = ?",
            [start, end, code],
        )
    for code, months in baseline_months.items():
        con.execute(
            "update dim_measure set baseline_months = ? where measure_code = ?", [months, code]
        )
    con.execute(f"create table dim_change ({_CHANGE_COLUMNS})")
    con.executemany(
        "insert into dim_change values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(c[0], c[1], c[1].replace(day=1), *c[2:]) for c in changes],
    )
    con.execute("create schema if not exists public")
    con.execute(
        "create table public.pub_change as select * from dim_change where scope <> 'organisation'"
    )


def _mi(d: date) -> int:
    return d.year * 12 + d.month - 1


def _pooled(points: list[dict], multiplier: int) -> float | None:
    points = [p for p in points if p["numerator"] is not None and p["denominator"]]
    if not points:
        return None
    return sum(p["numerator"] for p in points) * multiplier / sum(p["denominator"] for p in points)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fy(d: date) -> int:
    return d.year if d.month >= 4 else d.year - 1


def _series_rows(con, tier: str) -> dict[tuple, list[dict]]:
    cursor = con.execute(
        "select s.*, m.multiplier from fct_spc s join dim_measure m using (measure_code)"
        " where tier = ? order by level, series_key, measure_code, period",
        [tier],
    )
    names = [d[0] for d in cursor.description]
    out: dict[tuple, list[dict]] = {}
    for row in cursor.fetchall():
        r = dict(zip(names, row, strict=True))
        out.setdefault((r["level"], r["series_key"], r["measure_code"]), []).append(r)
    return out


def _series_changes(con, tier: str) -> dict[tuple, list[tuple]]:
    """(change_id, change_month, description) of the changes fct_series_change records for
    each series of ``tier``."""
    out: dict[tuple, list[tuple]] = {}
    for level, key, measure, change_id, month, description in con.execute(
        """select l.level, l.series_key, l.measure_code, l.change_id, l.change_month,
                  c.description
        from fct_series_change l join dim_change c using (change_id)
        where l.tier = ? order by l.change_month, l.change_id""",
        [tier],
    ).fetchall():
        out.setdefault((level, key, measure), []).append((change_id, month, description))
    return out


def _attributed(changes: list[tuple], start: date) -> tuple | None:
    """docs/programme-impact.md section 4: the latest change at most ATTRIBUTION_MONTHS
    before the run's first month, failing that the first up to 3 months after it."""
    before = [c for c in changes if 0 <= _mi(start) - _mi(c[1]) <= ATTRIBUTION_MONTHS]
    if before:
        return max(before, key=lambda c: (c[1], c[0]))
    after = [c for c in changes if 0 < _mi(c[1]) - _mi(start) <= ATTRIBUTION_MONTHS_AFTER]
    return min(after, key=lambda c: (c[1], c[0])) if after else None


def _impact(con, tier: str, rounding: int | None) -> tuple[list[tuple], list[tuple]]:
    """(impact rows, unexplained-shift rows) of one tier, from the real SPC rows."""
    impact_rows, shift_rows = [], []
    series_changes = _series_changes(con, tier)
    for (level, key, measure), points in _series_rows(con, tier).items():
        if tier == "public" and level == "organisation":
            continue
        valued = [p for p in points if p["value"] is not None]
        if not valued:
            continue
        first = points[0]
        org, sector, icb = first["org_code"], first["sector_code"], first["icb_code"]
        mult = first["multiplier"]
        sign = {"increase": 1, "decrease": -1}.get(first["improvement_direction"], 0)
        last_segment = max(p["segment"] for p in points)
        base = [p for p in valued if p["segment"] == 0 and p["in_baseline"]]
        current = [p for p in points if p["segment"] == last_segment]
        charted = [p for p in current if p["centre"] is not None]
        last_12 = valued[-12:]
        baseline_mean = _pooled(base, mult)
        last_value = _pooled(last_12, mult)
        improvement = (
            (last_value - baseline_mean) * sign
            if last_value is not None and baseline_mean is not None
            else None
        )
        # Runs of 7+ on one side of their segment's mean; the latest in the last segment is
        # the signal, every unattributed one is an unexplained shift.
        runs: list[tuple[int, list[dict]]] = []
        run: list[dict] = []
        side = 0
        for p in points:
            s = 0
            if p["value"] is not None and p["centre"] is not None:
                s = (p["value"] > p["centre"]) - (p["value"] < p["centre"])
            if s and s == side and run and run[-1]["segment"] == p["segment"]:
                run.append(p)
            else:
                if len(run) >= 7:
                    runs.append((side, run))
                run, side = ([p], s) if s else ([], 0)
        if len(run) >= 7:
            runs.append((side, run))
        changes = series_changes.get((level, key, measure), [])
        signal = signal_start = attributed = None
        for run_side, run in runs:
            label = "neutral" if sign == 0 else "improvement" if run_side * sign > 0 else "concern"
            follows = _attributed(changes, run[0]["period"])
            if follows is None and label != "neutral":
                shift_rows.append(
                    (level, key, org, sector, icb, first["programme_code"], measure, label,
                     run[0]["period"], run[-1]["period"], len(run))
                )  # fmt: skip
            if run[0]["segment"] == last_segment:
                signal, signal_start, attributed = label, run[0]["period"], follows
        fy_now = _fy(valued[-1]["period"])
        fy_current = [p for p in valued if _fy(p["period"]) == fy_now]
        fy_previous = [p for p in valued if _fy(p["period"]) == fy_now - 1]
        fy_cur_v, fy_prev_v = _pooled(fy_current, mult), _pooled(fy_previous, mult)
        rate = (
            sum(p["numerator"] for p in base) / sum(p["denominator"] for p in base)
            if base and sum(p["denominator"] for p in base)
            else None
        )
        expected = observed = excess = better = None
        if rate is not None and first["chart"] in ("p", "u", "p_prime", "u_prime"):
            expected = sum(p["denominator"] for p in last_12) * rate
            observed = float(sum(p["numerator"] for p in last_12))
            if rounding:
                expected = float(round(expected / rounding) * rounding)
            excess = observed - expected
            better = excess * sign
        impact_rows.append(
            (level, key, org, sector, icb, first["programme_code"], measure, first["chart"],
             first["improvement_direction"], base[0]["period"] if base else None,
             base[-1]["period"] if base else None, len(base), baseline_mean,
             _mean([p["lpl"] for p in base]), _mean([p["upl"] for p in base]),
             current[0]["segment_start"], charted[-1]["centre"] if charted else None,
             charted[-1]["lpl"] if charted else None, charted[-1]["upl"] if charted else None,
             last_12[0]["period"], last_12[-1]["period"], last_value, improvement,
             improvement / baseline_mean if improvement is not None and baseline_mean else None,
             signal, signal_start, attributed[0] if attributed else None,
             attributed[2] if attributed else None,
             f"{fy_now}/{(fy_now + 1) % 100:02d}", len(fy_current), fy_cur_v,
             f"{fy_now - 1}/{fy_now % 100:02d}" if fy_previous else None,
             len(fy_previous) if fy_previous else None, fy_prev_v,
             fy_cur_v - fy_prev_v if fy_cur_v is not None and fy_prev_v is not None else None,
             expected, observed, excess, better)
        )  # fmt: skip
    return impact_rows, shift_rows


_IMPACT_COLUMNS = """level varchar, series_key varchar, org_code varchar, sector_code varchar,
    icb_code varchar, programme_code varchar, measure_code varchar, chart varchar,
    improvement_direction varchar, baseline_from date, baseline_to date, baseline_points integer,
    baseline_mean double, baseline_lpl double, baseline_upl double, current_segment_start date,
    current_mean double, current_lpl double, current_upl double, last_12_from date,
    last_12_to date, last_12_value double, improvement_abs double, improvement_rel double,
    signal varchar, signal_start date, attributed_change_id varchar,
    attributed_change_description varchar, fy_current varchar, fy_current_months integer,
    fy_current_value double, fy_previous varchar, fy_previous_months integer,
    fy_previous_value double, fy_change_abs double, expected_events double,
    observed_events double, excess_events double, events_better double"""
_SHIFT_COLUMNS = """level varchar, series_key varchar, org_code varchar, sector_code varchar,
    icb_code varchar, programme_code varchar, measure_code varchar, signal varchar,
    run_start date, run_end date, points integer"""


def add_impact(con, rounding: int = 5) -> None:
    """Stand-ins for the impact models, from the real ``fct_spc`` (both tiers' rows) and
    ``fct_series_change`` in ``main``: ``fct_programme_impact`` and
    ``mart_unexplained_shifts`` there, ``public.pub_programme_impact`` (events rounded)."""
    internal, shifts = _impact(con, "internal", None)
    public, _ = _impact(con, "public", rounding)
    con.execute(f"create table fct_programme_impact ({_IMPACT_COLUMNS})")
    con.executemany(f"insert into fct_programme_impact values ({', '.join(['?'] * 39)})", internal)
    con.execute(f"create table mart_unexplained_shifts ({_SHIFT_COLUMNS})")
    if shifts:
        con.executemany(
            f"insert into mart_unexplained_shifts values ({', '.join(['?'] * 11)})", shifts
        )
    con.execute(f"create table public.pub_programme_impact ({_IMPACT_COLUMNS})")
    if public:
        con.executemany(
            f"insert into public.pub_programme_impact values ({', '.join(['?'] * 39)})", public
        )
    con.execute("alter table public.pub_programme_impact drop column org_code")


def organisation_charts(site: Path) -> dict[tuple[str, str, str], tuple[Path, dict]]:
    """Every organisation chart of an internal site, as the script draws it: (level,
    series_key, measure) -> (the page's data file, the organisation's entry in it)."""
    from pipelines.dashboard.build import DATA_FILE_SUFFIX, read_organisation_data

    found: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    for path in sorted(site.rglob(f"*{DATA_FILE_SUFFIX}")):
        data = read_organisation_data(path)
        for entry in data["series"]:
            key = ("organisation", entry["key"], data["measure"])
            assert key not in found, f"{key} in two data files"
            found[key] = (path, entry)
    return found
