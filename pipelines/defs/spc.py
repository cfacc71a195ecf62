"""``marts.spc_points``: Making Data Count SPC for every series the dashboards draw.

dbt builds the fact marts; SPC needs segment-aware run rules that SQL expresses badly, so this
asset reads the facts back from the working file (one query for every measure and level,
or one per batch of whole measures in a full rebuild, streamed and cut per measure), runs
:func:`pipelines.spc.spc_by_series` on all of a measure's series at once (vectorised, no
per-series loop), and writes the results, both tiers, into ``marts.spc_points``: a table
declared as a dbt source, from which dbt's models ``fct_spc`` (internal rows) and ``pub_spc``
(public rows) select, with their contracts, descriptions and tests
(``dbt_project/models/spc/``), so no published table mixes tiers. Only the series whose
inputs changed since
the last run are recomputed: a fingerprint per series, computed set-wise in DuckDB and kept
in ``marts.spc_series_state``, says which (:func:`refresh_spc`; docs/programme-impact.md
section 3 lists what it covers); their rows are deleted and inserted again in one
transaction, and every other row stays as it was. One row per fact row at each level:

=============  ====================================  =============================
level          source mart                           series_key
=============  ====================================  =============================
organisation   fct_measure_monthly                   org code
sector         fct_measure_by_sector_monthly         ``<icb code>|<sector code>``
icb            fct_measure_by_icb_monthly            icb code
region         fct_measure_by_programme_monthly      ``region``
=============  ====================================  =============================

The same again with ``tier = 'public'`` for region, ICB and sector, from the disclosure-
controlled ``pub_measure_by_*_monthly`` tables (schema ``public``): SPC on rounded counts,
suppressed months as missing points (``is_suppressed``), as docs/design.md §7 asks of public
figures. Internal rows come from unrounded counts.

Each series is cut into segments at the recorded changes that apply to it and rebase, and
each segment's limits rest on the catalogue's baseline (docs/programme-impact.md section 3:
the rules live in :mod:`pipelines.impact.changes`); the changes that apply to each series
are written, by the same step, to ``marts.spc_series_changes`` (dbt: ``fct_series_change``
and ``pub_series_change``).

``pub_spc`` (dbt, ``models/spc/pub_spc.sql``) is the public rows without the columns that
belong to the internal tier (tier, org_code, organisations_reporting, target: the target is
in ``dim_measure``) and with the limits of a suppressed month nulled: a suppressed cell is
null in every figure (the disclosure scan's rule), and the month is a gap in the chart. The
public dashboard reads only that table, so the public site stands on the public file alone.
dbt builds the four models in the step after this one (tag ``after_spc``), which Dagster
orders by the sources' asset key (``marts/spc_points``).
"""

import functools
import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import jinja2
import numpy as np
import polars as pl

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.dbt import MART_KEYS, PUBLIC_KEYS
from pipelines.defs.resources import WorkingFileRun
from pipelines.impact.changes import (
    SERIES_CHANGE_SCHEMA,
    SERIES_PLACE,
    baseline_window_mask,
    changes_for_series,
    rebase_points,
    series_changes,
    series_places,
)
from pipelines.memory import release_memory
from pipelines.settings import PROJECT_ROOT, load_settings
from pipelines.spc import spc_by_series
from pipelines.spc.constants import catalogue_direction, check_chart
from pipelines.warehouse import working_connection

#: What this step writes (both tiers; dbt sources, not published).
SPC_POINTS_TABLE = "spc_points"
SPC_SERIES_CHANGES_TABLE = "spc_series_changes"
SPC_POINTS_KEY = dg.AssetKey(["marts", SPC_POINTS_TABLE])
#: dbt's models over them (dbt_project/models/spc/): what the tiers publish.
FCT_SPC_TABLE = "fct_spc"
PUB_SPC_TABLE = "pub_spc"
SERIES_CHANGE_TABLE = "fct_series_change"
PUB_SERIES_CHANGE_TABLE = "pub_series_change"
#: The change register, internal and public (dbt models; docs/programme-impact.md §1).
CHANGE_TABLE = "dim_change"
PUB_CHANGE_TABLE = "pub_change"
#: The SPC module's name for limits on the points a caller's mask gave, and ours.
LIMITS_BASIS_NAMES = {"given_points": "baseline_window"}


@dataclass(frozen=True)
class LevelSource:
    """Where one level's series come from, as SQL expressions over its fact table.

    ``layer`` says which schema holds the table: the marts (internal tier) or the public
    tier's disclosure-controlled tables.
    """

    level: str
    tier: str
    table: str
    series_key: str
    org_code: str = "null"
    sector_code: str = "null"
    icb_code: str = "null"
    organisations_reporting: str = "organisations_reporting"
    is_suppressed: str = "false"
    layer: str = "marts"


# ICB and sector can in principle be null (an organisation outside any ICB); the key must not
# be, or the whole series would silently vanish from a join, so nulls get a visible marker.
LEVEL_SOURCES: tuple[LevelSource, ...] = (
    LevelSource(
        "organisation",
        "internal",
        "fct_measure_monthly",
        series_key="org_code",
        org_code="org_code",
        sector_code="sector_code",
        icb_code="icb_code",
        organisations_reporting="null",
    ),
    LevelSource(
        "sector",
        "internal",
        "fct_measure_by_sector_monthly",
        series_key="coalesce(icb_code, '-') || '|' || coalesce(sector_code, '-')",
        sector_code="sector_code",
        icb_code="icb_code",
    ),
    LevelSource(
        "icb",
        "internal",
        "fct_measure_by_icb_monthly",
        series_key="coalesce(icb_code, '-')",
        icb_code="icb_code",
    ),
    LevelSource("region", "internal", "fct_measure_by_programme_monthly", series_key="'region'"),
    # Public tier: no organisation level, no count of organisations (not published there).
    LevelSource(
        "sector",
        "public",
        "pub_measure_by_sector_monthly",
        series_key="coalesce(icb_code, '-') || '|' || coalesce(sector_code, '-')",
        sector_code="sector_code",
        icb_code="icb_code",
        organisations_reporting="null",
        is_suppressed="is_suppressed",
        layer="public",
    ),
    LevelSource(
        "icb",
        "public",
        "pub_measure_by_icb_monthly",
        series_key="coalesce(icb_code, '-')",
        icb_code="icb_code",
        organisations_reporting="null",
        is_suppressed="is_suppressed",
        layer="public",
    ),
    LevelSource(
        "region",
        "public",
        "pub_measure_by_region_monthly",
        series_key="'region'",
        organisations_reporting="null",
        is_suppressed="is_suppressed",
        layer="public",
    ),
)
LEVELS: tuple[str, ...] = ("organisation", "sector", "icb", "region")
SOURCE_TABLES: tuple[str, ...] = tuple(s.table for s in LEVEL_SOURCES)

#: The table's columns and types, in order (also the schema of an empty result).
FCT_SPC_SCHEMA: dict[str, pl.DataType] = {
    "level": pl.String(),
    "tier": pl.String(),
    "series_key": pl.String(),
    "org_code": pl.String(),
    "sector_code": pl.String(),
    "icb_code": pl.String(),
    "programme_code": pl.String(),
    "measure_code": pl.String(),
    "period": pl.Date(),
    "organisations_reporting": pl.Int64(),
    "numerator": pl.Int64(),
    "denominator": pl.Int64(),
    "value": pl.Float64(),
    "is_suppressed": pl.Boolean(),
    "chart": pl.String(),
    "improvement_direction": pl.String(),
    "target": pl.Float64(),
    "centre": pl.Float64(),
    "lpl": pl.Float64(),
    "upl": pl.Float64(),
    "near_lpl": pl.Float64(),
    "near_upl": pl.Float64(),
    # docs/programme-impact.md section 3: the segment (0 before the first rebase), its first
    # month, whether the point is one its limits rest on, and how those points were chosen.
    "segment": pl.Int32(),
    "segment_start": pl.Date(),
    "in_baseline": pl.Boolean(),
    "limits_basis": pl.String(),
    "trial_limits": pl.Boolean(),
    "special_cause_flag": pl.Boolean(),
    "special_cause_type": pl.String(),
    "special_cause_label": pl.String(),
    "point_type": pl.String(),
    "variation_icon": pl.String(),
    "assurance_type": pl.String(),
}
SERIES_COLS: tuple[str, ...] = ("level", "tier", "series_key", "measure_code")

#: What each tier's SPC tables hold (which rows, which columns, what a suppressed month
#: shows) is decided once, by the dbt macros in this file; :func:`tier_model_sql` renders
#: them for the hand-made snapshots of tests.
SPC_TIER_MACROS = PROJECT_ROOT / "dbt_project" / "macros" / "spc_tiers.sql"
SPC_MODELS = PROJECT_ROOT / "dbt_project" / "models" / "spc"


_DUCKDB_TYPES = {
    pl.String(): "varchar",
    pl.Date(): "date",
    pl.Int64(): "bigint",
    pl.Float64(): "double",
    pl.Boolean(): "boolean",
    pl.Int32(): "integer",
}


@dataclass(frozen=True)
class MeasureSpc:
    """One measure's SPC settings from the catalogue, in the SPC module's terms."""

    code: str
    chart: str
    improvement_direction: str
    multiplier: float
    target: float | None
    baseline_from: date | None = None
    baseline_to: date | None = None
    baseline_months: int | None = None


def sources(
    schema: str = "marts", public_schema: str | None = "public"
) -> list[tuple[LevelSource, str]]:
    """The level sources in use, each with its qualified table name.

    ``public_schema`` None leaves the public tier out (a warehouse without ``pub_*`` tables,
    such as the internal snapshot on its own).
    """
    return [
        (s, f"{schema if s.layer == 'marts' else public_schema}.{s.table}")
        for s in LEVEL_SOURCES
        if s.layer == "marts" or public_schema is not None
    ]


def catalogue_settings(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> list[MeasureSpc]:
    """Every measure's chart, direction, multiplier and target, checked before any SPC runs.

    A measure in the facts but not in ``dim_measure``, or an unknown direction, is an error:
    skipping it would silently drop its charts.
    """
    facts_union = " union ".join(
        f"select measure_code from {table}" for _, table in sources(schema, public_schema)
    )
    orphans = [
        code
        for (code,) in con.execute(
            f"""select distinct measure_code from ({facts_union})
            where measure_code not in (select measure_code from {schema}.dim_measure)
            order by 1"""
        ).fetchall()
    ]
    if orphans:
        raise ValueError(f"measures with facts but no row in dim_measure: {orphans}")
    measures = []
    # A dim_measure from before the catalogue named baselines (a hand-made warehouse in
    # tests, an old working file) has no baseline columns: no baseline, all points.
    has_baseline = {"baseline_from", "baseline_to", "baseline_months"} <= _columns(
        con, schema, "dim_measure"
    )
    baseline = (
        "baseline_from, baseline_to, baseline_months"
        if has_baseline
        else "null::date, null::date, null::integer"
    )
    rows = con.execute(
        f"""select measure_code, spc_chart, improvement_direction, multiplier, target,
               {baseline}
        from {schema}.dim_measure order by measure_code"""
    ).fetchall()
    for code, chart, direction, multiplier, target, start, end, months in rows:
        measures.append(
            MeasureSpc(
                code,
                check_chart(chart, code),
                catalogue_direction(direction, code),
                float(multiplier),
                None if target is None else float(target),
                start,
                end,
                None if months is None else int(months),
            )
        )
    return measures


def load_changes(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> dict[str, pl.DataFrame]:
    """The register by tier: ``marts.dim_change`` for internal series, ``public.pub_change``
    (no organisation-scoped rows) for public ones."""
    tables = {"internal": (schema, CHANGE_TABLE)}
    if public_schema is not None:
        tables["public"] = (public_schema, PUB_CHANGE_TABLE)
    # A warehouse built without the register (a hand-made one in tests) has no changes; in
    # the pipeline the SPC step depends on both tables, so they always exist there.
    return {
        tier: con.execute(f"select * from {table_schema}.{table}").pl()
        for tier, (table_schema, table) in tables.items()
        if _columns(con, table_schema, table)
    }


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The columns of ``schema.table`` in the connection's current database (empty: no
    such table)."""
    return {
        name
        for (name,) in con.execute(
            """select column_name from information_schema.columns
            where table_catalog = current_database() and table_schema = ? and table_name = ?""",
            [schema, table],
        ).fetchall()
    }


def _fact_rows_sql(schema: str, public_schema: str | None) -> str:
    """Every level's fact rows in ``fct_spc``'s terms, as one ``union all`` (no order).

    The one place that says how a source row becomes a point: the facts read for SPC and the
    fingerprints of :func:`series_fingerprints` both select from it, so a column that feeds
    a ``fct_spc`` row can never be left out of the fingerprint.
    """
    return " union all ".join(
        f"""
        select '{s.level}' as level, '{s.tier}' as tier, {s.series_key} as series_key,
               {s.org_code} as org_code, {s.sector_code} as sector_code,
               {s.icb_code} as icb_code, programme_code, measure_code, period,
               cast({s.organisations_reporting} as bigint) as organisations_reporting,
               cast(numerator as bigint) as numerator, cast(denominator as bigint) as denominator,
               cast(value as double) as value,
               coalesce(cast({s.is_suppressed} as boolean), false) as is_suppressed
        from {table}
        """
        for s, table in sources(schema, public_schema)
    )


def _facts_sql(
    schema: str, public_schema: str | None, only: str | None = None, measures: int = 0
) -> str:
    """Every measure's facts at every level in one query (``only``: a relation of series
    keys to keep, as a semi join; ``measures``: that many measure codes to keep, as
    parameters; 0 keeps every measure).

    Ordered by measure, then series, then period: :func:`_iter_measure_facts` cuts the
    stream at each new measure, and ``spc_by_series`` finds each measure's rows already
    grouped and skips its sort.
    """
    keep = f"semi join {only} using ({', '.join(SERIES_COLS)})" if only else ""
    where = f"where measure_code in ({', '.join('?' * measures)})" if measures else ""
    return (
        f"select facts.* from ({_fact_rows_sql(schema, public_schema)}) as facts {keep}"
        f" {where} order by measure_code, level, tier, series_key, period"
    )


def _iter_measure_facts(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[str] | None = None,
    batch_rows: int = 1_000_000,
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Stream ``sql`` (ordered by measure first) and yield each measure's rows whole.

    One query for every measure instead of one per measure and level; streamed in Arrow
    batches, so memory is bounded by the largest measure plus a batch, not the whole table.
    ``con`` must not run anything else until the iterator is exhausted (use a cursor).
    """
    reader = con.execute(sql, params).to_arrow_reader(batch_rows)
    pending: list[pl.DataFrame] = []
    current: str | None = None
    for batch in reader:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        for part in frame.partition_by("measure_code", maintain_order=True):
            code = part["measure_code"][0]
            if code != current and pending:
                yield current, pl.concat(pending)  # type: ignore[misc]
                pending = []
            current = code
            pending.append(part)
    if pending:
        yield current, pl.concat(pending)  # type: ignore[misc]


def _iter_series_parts(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[str] | None,
    rows: int,
    batch_rows: int = 1_000_000,
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Stream ``sql`` (ordered by series) and yield (measure, part): consecutive whole
    series of one measure, at most ``rows`` rows (a longer series alone).

    Unlike :func:`_iter_measure_facts`, a measure is never held whole (at SCALE=5 a
    care-home measure is 5.7 million rows): only the last series of each Arrow batch is
    held back, since it may go on in the next. ``con`` must not run anything else until
    the iterator is exhausted (use a cursor).
    """
    reader = con.execute(sql, params).to_arrow_reader(batch_rows)
    held: pl.DataFrame | None = None
    for batch in reader:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        if held is not None:
            frame = pl.concat([held, frame])
        if frame.height == 0:
            continue
        ids = frame.select(pl.struct(list(SERIES_COLS)).rle_id()).to_series()
        cut = int((ids < ids[-1]).sum())
        held = frame.slice(cut)
        yield from _measure_parts(frame.slice(0, cut), rows)
    if held is not None:
        yield from _measure_parts(held, rows)


def _measure_parts(frame: pl.DataFrame, rows: int) -> Iterator[tuple[str, pl.DataFrame]]:
    if frame.height == 0:
        return
    for part in frame.partition_by("measure_code", maintain_order=True):
        for chunk in series_chunks(part, rows):
            yield chunk["measure_code"][0], chunk


def measure_series_changes(
    facts: pl.DataFrame, changes: dict[str, pl.DataFrame] | None
) -> pl.DataFrame:
    """``fct_series_change`` rows of one measure's series: each tier's series against its
    own register (docs/programme-impact.md section 1)."""
    if not changes or facts.is_empty():
        return pl.DataFrame(schema=SERIES_CHANGE_SCHEMA)
    return places_series_changes(series_places(facts), changes)


def places_series_changes(
    places: pl.DataFrame, changes: dict[str, pl.DataFrame] | None
) -> pl.DataFrame:
    """``fct_series_change`` rows from series places (:func:`series_places`' columns), one
    measure at a time so the series-by-change cross join stays one measure's size."""
    if not changes or places.is_empty():
        return pl.DataFrame(schema=SERIES_CHANGE_SCHEMA)
    frames = [
        series_changes(part, changes_for_series(part.filter(pl.col("tier") == tier), table))
        for part in places.partition_by("measure_code", maintain_order=True)
        for tier, table in changes.items()
    ]
    return pl.concat(frames)


def spc_for_measure(
    facts: pl.DataFrame,
    measure: MeasureSpc,
    changes: dict[str, pl.DataFrame] | None = None,
    series_change: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """SPC for every series of one measure (rows as :func:`_facts_sql` returns them).

    XmR reads the mart's ``value`` (already on the unit scale); P'/U' read the counts and
    scale by the multiplier; so values and limits are on the measure's unit scale either way.

    Segments and baselines follow docs/programme-impact.md section 3: every applicable
    change with rebase true cuts the series at its month; segment 0's limits rest on its
    points in the measure's baseline window, other segments' (and segment 0's without
    window points) on their first ``baseline_months`` points, else on all their points.
    ``series_change`` (:func:`measure_series_changes`) is computed from ``changes`` if not
    given.
    """
    if series_change is None:
        series_change = measure_series_changes(facts, changes)
    cuts = series_change.filter(pl.col("rebases"))
    rebase = rebase_points(facts, cuts)
    window = baseline_window_mask(facts, rebase, measure.baseline_from, measure.baseline_to)
    facts = facts.with_columns(rebase.alias("_rebase"), window.alias("_in_window"))
    options: dict[str, Any] = {
        "series_cols": list(SERIES_COLS),
        "order_col": "period",
        "chart": measure.chart,
        "improvement_direction": measure.improvement_direction,
        "target": measure.target,
        "rebase_col": "_rebase",
        "baseline_col": "_in_window",
        "fix_after_n_points": measure.baseline_months,
    }
    if measure.chart == "xmr":
        result = spc_by_series(facts, value_col="value", multiplier=1.0, **options)
    else:
        result = spc_by_series(
            facts,
            numerator_col="numerator",
            denominator_col="denominator",
            multiplier=measure.multiplier,
            **options,
        )
    return (
        result.rename({"mean": "centre"})
        .with_columns(
            segment_start=pl.col("period").min().over([*SERIES_COLS, "segment"]),
            limits_basis=pl.col("limits_basis").replace(LIMITS_BASIS_NAMES),
            chart=pl.lit(measure.chart),
            improvement_direction=pl.lit(measure.improvement_direction),
            target=pl.lit(measure.target, dtype=pl.Float64),
        )
        .select(list(FCT_SPC_SCHEMA))
        .cast(FCT_SPC_SCHEMA)  # type: ignore[arg-type]
    )


#: Fact rows given to the SPC method at once at most (whole series; a longer series alone).
#: The method's working arrays and its result are several times its input: at SCALE=5 a
#: care-home measure has 5.5 million fact rows, and computing it whole took the step to
#: 14 GB (docs/benchmark.md).
SPC_CHUNK_ROWS = 250_000


def series_chunks(facts: pl.DataFrame, rows: int = SPC_CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """``facts`` (one measure's, ordered by series as :func:`_facts_sql` returns them) in
    consecutive parts of whole series, each of at most ``rows`` rows (a longer series alone).

    Why whole series: every figure of the method (limits, runs, Laney's sigma) is computed
    within one series and its segments, so a series split across parts would be wrong and a
    measure split between series is not: the parts' results, concatenated, are the
    measure's result (tests/test_spc_incremental.py)."""
    if facts.height <= rows:
        yield facts
        return
    lengths = facts.select(pl.struct(list(SERIES_COLS)).rle().struct.field("len"))
    start = filled = 0
    for size in lengths.to_series():
        if filled and filled + size > rows:
            yield facts.slice(start, filled)
            start, filled = start + filled, 0
        filled += size
    yield facts.slice(start, filled)


def iter_fct_spc(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> Iterator[pl.DataFrame]:
    """``fct_spc`` one measure at a time, so memory is bounded by the largest measure.

    Series never span measures, so nothing is lost by splitting; at national scale (~20M fact
    rows) the whole table at once would not fit the memory budget.
    """
    for spc, _ in iter_spc_and_series_changes(con, schema, public_schema):
        yield spc


def iter_spc_and_series_changes(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Per measure, its ``fct_spc`` rows and its ``fct_series_change`` rows, computed from
    the same changes in one pass."""
    changes = load_changes(con, schema, public_schema)
    measures = {m.code: m for m in catalogue_settings(con, schema, public_schema)}
    reader = con.cursor()
    try:
        for code, facts in _iter_measure_facts(reader, _facts_sql(schema, public_schema)):
            series_change = measure_series_changes(facts, changes)
            yield spc_for_measure(facts, measures[code], series_change=series_change), series_change
    finally:
        reader.close()


def build_fct_spc(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> pl.DataFrame:
    """Compute the whole ``fct_spc`` from the fact marts and ``dim_measure`` in ``schema``
    (and the public tier's tables in ``public_schema``, unless None).

    Pure (reads only), so tests can call it on any DuckDB file; the asset streams
    :func:`iter_fct_spc` into the table instead.
    """
    frames = list(iter_fct_spc(con, schema, public_schema))
    return pl.concat(frames) if frames else pl.DataFrame(schema=FCT_SPC_SCHEMA)


def build_series_change(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> pl.DataFrame:
    """The whole ``fct_series_change`` (pure, for tests; the asset writes it while it
    streams ``fct_spc``)."""
    frames = [c for _, c in iter_spc_and_series_changes(con, schema, public_schema)]
    return pl.concat(frames) if frames else pl.DataFrame(schema=SERIES_CHANGE_SCHEMA)


def write_series_change(
    con: duckdb.DuckDBPyConnection,
    frame: pl.DataFrame,
    table: str = f"marts.{SPC_SERIES_CHANGES_TABLE}",
    public_table: str | None = None,
) -> tuple[int, int]:
    """Replace ``table`` with ``frame`` and (if given) ``public_table`` with its public rows,
    in one transaction; for tests and hand-made snapshots (the asset writes the table with
    :func:`refresh_spc`). Returns the rows written to each."""
    columns = ", ".join(
        f"{name} {_DUCKDB_TYPES[dtype]}" for name, dtype in SERIES_CHANGE_SCHEMA.items()
    )
    frame = frame.select(list(SERIES_CHANGE_SCHEMA)).cast(SERIES_CHANGE_SCHEMA)  # type: ignore[arg-type]
    con.execute("begin transaction")
    try:
        for name in (table, public_table):
            if name and "." in name:
                con.execute(f"create schema if not exists {name.rsplit('.', 1)[0]}")
        con.execute(f"create or replace table {table} ({columns})")
        con.register("series_change_incoming", frame.to_arrow())
        try:
            con.execute(f"insert into {table} select * from series_change_incoming")
        finally:
            con.unregister("series_change_incoming")
        public_rows = 0
        if public_table:
            con.execute(
                f"""create or replace table {public_table} as
                {tier_model_sql(PUB_SERIES_CHANGE_TABLE, table)}
                order by level, series_key, measure_code, change_month, change_id"""
            )
            [(public_rows,)] = con.execute(f"select count(*) from {public_table}").fetchall()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return frame.height, int(public_rows)


def write_fct_spc(
    con: duckdb.DuckDBPyConnection,
    frames: pl.DataFrame | Iterable[pl.DataFrame],
    table: str = f"marts.{SPC_POINTS_TABLE}",
) -> int:
    """Replace ``table`` with ``frames`` in one transaction: readers see old or new, never
    half. ``frames`` may be a generator (computed while writing). Returns the rows written."""
    schema = table.rsplit(".", 1)[0] if "." in table else None
    columns = ", ".join(f"{name} {_DUCKDB_TYPES[dtype]}" for name, dtype in FCT_SPC_SCHEMA.items())
    rows = 0
    con.execute("begin transaction")
    try:
        if schema:
            con.execute(f"create schema if not exists {schema}")
        con.execute(f"create or replace table {table} ({columns})")
        for frame in [frames] if isinstance(frames, pl.DataFrame) else frames:
            con.register("fct_spc_incoming", frame.to_arrow())
            try:
                con.execute(f"insert into {table} select * from fct_spc_incoming")
            finally:
                con.unregister("fct_spc_incoming")
            rows += frame.height
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return rows


def tier_model_sql(model: str, source_table: str) -> str:
    """The SQL of the dbt model ``model`` in ``dbt_project/models/spc`` (one of the tiers'
    SPC tables) with its source read from ``source_table``: the models' own macros,
    rendered outside dbt, so a hand-made snapshot's tiers are split exactly as dbt splits
    them."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["source"] = lambda _source, _table: source_table
    template = SPC_TIER_MACROS.read_text() + (SPC_MODELS / f"{model}.sql").read_text()
    return environment.from_string(template).render()


def write_pub_spc(
    con: duckdb.DuckDBPyConnection,
    source: str = f"marts.{SPC_POINTS_TABLE}",
    table: str = f"public.{PUB_SPC_TABLE}",
) -> int:
    """Replace ``table`` with what dbt's ``pub_spc`` model makes of ``source`` (one
    statement, so readers see old or new): for hand-made snapshots in tests. Returns the
    rows written."""
    schema = table.rsplit(".", 1)[0] if "." in table else None
    if schema:
        con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"""create or replace table {table} as
        {tier_model_sql(PUB_SPC_TABLE, source)}
        order by level, series_key, measure_code, period"""
    )
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


#: Bump when what a series' ``fct_spc`` or ``fct_series_change`` rows are derived from changes
#: outside the files :func:`method_digest` reads (a dependency's behaviour, say): every stored
#: fingerprint then differs, and the next run recomputes every series.
SPC_METHOD_VERSION = 1
#: One row per series: its point count and the fingerprint of everything its rows depend on.
SPC_STATE_TABLE = "spc_series_state"
SPC_STATE_SCHEMA: dict[str, pl.DataType] = {
    **{c: pl.String() for c in SERIES_COLS},
    "points": pl.Int64(),
    "fingerprint": pl.String(),
}
#: The fact columns that, with the series key, make a point (every one ends up in its row).
FACT_POINT_COLUMNS: tuple[str, ...] = (
    "period",
    "org_code",
    "sector_code",
    "icb_code",
    "programme_code",
    "organisations_reporting",
    "numerator",
    "denominator",
    "value",
    "is_suppressed",
)
#: Rows inserted into ``fct_spc`` per statement at most: a run that recomputes a few series
#: writes them in one insert; a full rebuild at national scale is not held in memory whole.
#: With READ_BATCH_ROWS this sets the full rebuild's peak at SCALE=5, the pipeline's
#: largest: 1M and 2M took 5,450 MiB, 500k and 1M 5,128 MiB for about 8% more time
#: (docs/benchmark.md, "SCALE=5: the memory target met").
INSERT_BATCH_ROWS = 500_000
#: Fact rows per read at most (whole measures; a larger measure is read alone): a run that
#: recomputes a few series reads them in one query; a full rebuild at national scale does
#: not sort every fact row in memory at once.
READ_BATCH_ROWS = 1_000_000
_METHOD_FILES = ("spc/*.py", "impact/changes.py", "defs/spc.py")


@functools.cache
def method_digest() -> str:
    """The version of the code that turns a series' inputs into its rows.

    :data:`SPC_METHOD_VERSION`, the numpy and polars versions (floating-point results may
    move in the last bit between releases) and the source of the SPC module, the change
    rules and this module: editing any of them recomputes every series on the next run, so
    a stored row can never come from other code than a fresh build would run.
    """
    digest = hashlib.md5(f"{SPC_METHOD_VERSION}|{np.__version__}|{pl.__version__}".encode())
    root = Path(__file__).resolve().parents[1]
    for pattern in _METHOD_FILES:
        for path in sorted(root.glob(pattern)):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _measure_digest(measure: MeasureSpc) -> str:
    """The catalogue settings that shape a measure's charts (chart, direction, multiplier,
    target, baseline window and months) with :func:`method_digest`."""
    return hashlib.md5(f"{method_digest()}|{measure!r}".encode()).hexdigest()


def series_fingerprints(
    con: duckdb.DuckDBPyConnection,
    measures: dict[str, MeasureSpc],
    changes: dict[str, pl.DataFrame],
    schema: str = "marts",
    public_schema: str | None = "public",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every series' fingerprint (:data:`SPC_STATE_SCHEMA`) and its ``fct_series_change``
    rows, from one aggregate query over every level source: no fact row leaves DuckDB.

    A series' rows depend on its points, its measure's catalogue settings, the changes that
    apply to it within its span (its ``fct_series_change`` rows, which is where the register
    reaches a series) and the code (:func:`method_digest`), and on nothing else: series are
    computed independently (docs/programme-impact.md section 3). The points enter as a sum
    of row hashes (order-free, and (series, period) is unique: the asset check says so); a
    DuckDB release that changes ``hash`` only makes every fingerprint differ once.
    """
    places = con.execute(
        f"""select {", ".join(SERIES_COLS)},
               min(period) as first_period, max(period) as last_period,
               {", ".join(f"last({c} order by period) as {c}" for c in SERIES_PLACE)},
               count(*) as points,
               cast(sum(hash({", ".join(FACT_POINT_COLUMNS)})) as varchar) as facts_hash
        from ({_fact_rows_sql(schema, public_schema)}) as facts
        group by {", ".join(SERIES_COLS)}"""
    ).pl()
    series_change = places_series_changes(places, changes)
    change_text = series_change.group_by(list(SERIES_COLS)).agg(
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("") for c in SERIES_CHANGE_SCHEMA],
            separator=",",
        )
        .sort()
        .str.join("|")
        .alias("changes")
    )
    digests = {code: _measure_digest(m) for code, m in measures.items()}
    inputs = places.join(change_text, on=list(SERIES_COLS), how="left").select(
        *SERIES_COLS,
        "points",
        pl.concat_str(
            pl.col("facts_hash"),
            pl.col("points").cast(pl.String),
            pl.col("measure_code").replace_strict(digests, return_dtype=pl.String),
            pl.col("changes").fill_null(""),
            separator="/",
        ).alias("fingerprint_input"),
    )
    con.register("spc_fingerprint_input", inputs.to_arrow())
    try:
        fingerprints = con.execute(
            f"""select {", ".join(SERIES_COLS)}, points, md5(fingerprint_input) as fingerprint
            from spc_fingerprint_input"""
        ).pl()
    finally:
        con.unregister("spc_fingerprint_input")
    return fingerprints.cast(SPC_STATE_SCHEMA), series_change  # type: ignore[arg-type]


@dataclass(frozen=True)
class SpcTables:
    """The tables :func:`refresh_spc` owns, qualified."""

    spc: str
    series_change: str
    state: str
    #: Where the recomputed rows are written first, committed batch by batch, before one
    #: transaction moves them into ``spc`` (:func:`refresh_spc`); dropped when the refresh
    #: ends, replaced by the next refresh if a process died before that.
    staged: str

    @classmethod
    def of(cls, schema: str = "marts") -> "SpcTables":
        return cls(
            spc=f"{schema}.{SPC_POINTS_TABLE}",
            series_change=f"{schema}.{SPC_SERIES_CHANGES_TABLE}",
            state=f"{schema}.{SPC_STATE_TABLE}",
            staged=f"{schema}.{SPC_POINTS_TABLE}__staged",
        )

    def owned(self) -> list[str]:
        """Every table a refresh writes (and signs)."""
        return [self.spc, self.series_change, self.state]


@dataclass(frozen=True)
class SpcRefresh:
    """What one :func:`refresh_spc` did: ``full`` when it rebuilt every table from nothing
    (``reason`` says why); otherwise it recomputed ``recomputed_series``, deleted the rows
    of ``removed_series`` (no facts any more) and kept the rest untouched."""

    full: bool
    reason: str
    series: int
    recomputed_series: pl.DataFrame
    removed_series: pl.DataFrame
    spc_rows_written: int

    @property
    def recomputed(self) -> int:
        return self.recomputed_series.height

    @property
    def removed(self) -> int:
        return self.removed_series.height


def _table_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.rsplit(".", 1)
    return {
        column: data_type.lower()
        for column, data_type in con.execute(
            """select column_name, data_type from information_schema.columns
            where table_catalog = current_database() and table_schema = ? and table_name = ?
            order by ordinal_position""",
            [schema, name],
        ).fetchall()
    }


def _table_comment(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    schema, name = table.rsplit(".", 1)
    rows = con.execute(
        """select comment from duckdb_tables()
        where database_name = current_database() and schema_name = ? and table_name = ?""",
        [schema, name],
    ).fetchall()
    return rows[0][0] if rows else None


def _schema_sql(schema: dict[str, pl.DataType]) -> str:
    return ", ".join(f"{name} {_DUCKDB_TYPES[dtype]}" for name, dtype in schema.items())


def stored_state(
    con: duckdb.DuckDBPyConnection, tables: SpcTables
) -> tuple[pl.DataFrame | None, str]:
    """The fingerprints of the rows in the tables now, or None and why they cannot be
    trusted: a table missing or of another shape (columns in order), a table replaced by
    another writer since the last refresh, or ``spc_points`` not holding as many rows as the
    state accounts for (rows deleted or added behind its back). None means a full rebuild."""
    expected = {
        tables.spc: FCT_SPC_SCHEMA,
        tables.series_change: SERIES_CHANGE_SCHEMA,
        tables.state: SPC_STATE_SCHEMA,
    }
    for table, schema in expected.items():
        want = {name: _DUCKDB_TYPES[dtype] for name, dtype in schema.items()}
        if list(_table_types(con, table).items()) != list(want.items()):
            return None, f"{table} is missing or has other columns"
    # Every refresh signs its tables with one token (a table comment, which a table that is
    # created again loses): a table another writer replaced since, even with the same
    # number of rows, is not one the state describes.
    tokens = {table: _table_comment(con, table) for table in tables.owned()}
    if len(set(tokens.values())) != 1 or None in tokens.values():
        others = sorted(t for t, c in tokens.items() if c != tokens[tables.state] or c is None)
        return None, f"{', '.join(others)} written by something else since the last refresh"
    state = con.execute(f"select * from {tables.state}").pl()
    [(rows,)] = con.execute(f"select count(*) from {tables.spc}").fetchall()
    if rows != state["points"].sum():
        return (
            None,
            f"{tables.spc} holds {rows} rows, the state accounts for {state['points'].sum()}",
        )
    return state.cast(SPC_STATE_SCHEMA), "fingerprints stored"  # type: ignore[arg-type]


def _read_batches(series: pl.DataFrame, rows: int = READ_BATCH_ROWS) -> list[list[str]]:
    """The measures of ``series`` (fingerprint rows) in groups of whole measures of at most
    ``rows`` points together (a larger measure alone), in measure order."""
    batches: list[list[str]] = []
    total = rows
    for code, points in (
        series.group_by("measure_code").agg(pl.col("points").sum()).sort("measure_code").iter_rows()
    ):
        if total + points > rows:
            batches.append([])
            total = 0
        batches[-1].append(code)
        total += points
    return batches


def refresh_spc(
    con: duckdb.DuckDBPyConnection,
    schema: str = "marts",
    public_schema: str | None = "public",
    *,
    full: bool = False,
    insert_batch_rows: int = INSERT_BATCH_ROWS,
    read_batch_rows: int = READ_BATCH_ROWS,
    spc_chunk_rows: int = SPC_CHUNK_ROWS,
) -> SpcRefresh:
    """Bring ``spc_points`` and ``spc_series_changes`` up to date with the facts,
    recomputing only the series whose fingerprint changed.

    Fingerprints (:func:`series_fingerprints`) are compared with the state table; the
    changed series' facts are read in one query and computed measure by measure into a
    staging table (``SpcTables.staged``), committed insert by insert; then each table gets
    one delete (the changed and vanished series) and one insert, all in one transaction
    with the new state, so readers see the old tables or the new, and a failed run leaves
    state and tables agreeing. Why stage: DuckDB holds a transaction's uncommitted appends
    outside its memory limit, so the whole rebuild written inside the one transaction took
    the process from 2.7 to 10.4 GB at SCALE=5 (22 million rows); staged, the transaction
    moves rows already on disk (docs/benchmark.md, "SCALE=5 in one go"). The result equals
    a full rebuild's row for row (tests/test_spc_incremental.py). ``full`` (or a state
    that cannot be trusted) rebuilds every table from nothing. ``insert_batch_rows``,
    ``read_batch_rows`` and ``spc_chunk_rows`` bound the rows held at once
    (:data:`INSERT_BATCH_ROWS`, :data:`READ_BATCH_ROWS`, :data:`SPC_CHUNK_ROWS`).
    """
    tables = SpcTables.of(schema)
    measures = {m.code: m for m in catalogue_settings(con, schema, public_schema)}
    changes = load_changes(con, schema, public_schema)
    fingerprints, series_change = series_fingerprints(con, measures, changes, schema, public_schema)
    keys = list(SERIES_COLS)
    stored, reason = (None, "full rebuild asked for") if full else stored_state(con, tables)
    removed = fingerprints.select(keys).clear()
    if stored is None:
        changed = fingerprints.select(keys)
    else:
        changed = fingerprints.join(stored, on=[*keys, "fingerprint"], how="anti").select(keys)
        removed = stored.join(fingerprints, on=keys, how="anti").select(keys)
    stale = pl.concat([changed, removed])
    for table in [*tables.owned(), tables.staged]:
        con.execute(f"create schema if not exists {table.rsplit('.', 1)[0]}")
    con.execute(f"create or replace table {tables.staged} ({_schema_sql(FCT_SPC_SCHEMA)})")
    try:
        written = _stage_spc_rows(
            con,
            tables.staged,
            fingerprints.join(changed, on=keys, how="semi"),
            changed if stored is not None else None,
            measures,
            series_change.join(changed, on=keys, how="semi").partition_by(
                "measure_code", as_dict=True
            ),
            schema,
            public_schema,
            insert_batch_rows=insert_batch_rows,
            read_batch_rows=read_batch_rows,
            spc_chunk_rows=spc_chunk_rows,
        )
        _swap_in(con, tables, stored is None, stale, changed, series_change, fingerprints)
    finally:
        con.execute(f"drop table if exists {tables.staged}")
    return SpcRefresh(
        full=stored is None,
        reason=reason,
        series=fingerprints.height,
        recomputed_series=changed,
        removed_series=removed,
        spc_rows_written=written,
    )


def _stage_spc_rows(
    con: duckdb.DuckDBPyConnection,
    staged: str,
    series: pl.DataFrame,
    only: pl.DataFrame | None,
    measures: dict[str, MeasureSpc],
    change_by_measure: dict[tuple[Any, ...], pl.DataFrame],
    schema: str,
    public_schema: str | None,
    *,
    insert_batch_rows: int,
    read_batch_rows: int,
    spc_chunk_rows: int,
) -> int:
    """Compute the SPC rows of ``series`` (fingerprint rows; ``only``: the series to read,
    None for every one) and append them to ``staged``, each insert committed on its own;
    return the rows written."""
    empty_change = pl.DataFrame(schema=SERIES_CHANGE_SCHEMA)
    written = 0
    buffered: list[pl.DataFrame] = []

    def insert(frames: list[pl.DataFrame]) -> int:
        frame = pl.concat(frames)
        con.register("fct_spc_incoming", frame.to_arrow())
        try:
            con.execute(f"insert into {staged} select * from fct_spc_incoming")
        finally:
            con.unregister("fct_spc_incoming")
        return frame.height

    reader = con.cursor()
    try:
        if only is not None:
            reader.register("spc_changed", only.to_arrow())
        for codes in _read_batches(series, read_batch_rows):
            sql = _facts_sql(
                schema, public_schema, "spc_changed" if only is not None else None, len(codes)
            )
            for code, part in _iter_series_parts(reader, sql, codes, spc_chunk_rows):
                buffered.append(
                    spc_for_measure(
                        part,
                        measures[code],
                        series_change=change_by_measure.get((code,), empty_change),
                    )
                )
                if sum(f.height for f in buffered) >= insert_batch_rows:
                    written += insert(buffered)
                    buffered = []
        if buffered:
            written += insert(buffered)
    finally:
        reader.close()
    return written


def _swap_in(
    con: duckdb.DuckDBPyConnection,
    tables: SpcTables,
    rebuild: bool,
    stale: pl.DataFrame,
    changed: pl.DataFrame,
    series_change: pl.DataFrame,
    fingerprints: pl.DataFrame,
) -> None:
    """One transaction: the stale series' rows out of the SPC tables (every row, when
    ``rebuild``), the staged rows and the changed series' changes in, the new state, and
    every owned table signed; or nothing, if any of it fails."""
    keys = list(SERIES_COLS)
    con.execute("begin transaction")
    try:
        if rebuild:
            con.execute(f"create or replace table {tables.spc} ({_schema_sql(FCT_SPC_SCHEMA)})")
            con.execute(
                f"create or replace table {tables.series_change}"
                f" ({_schema_sql(SERIES_CHANGE_SCHEMA)})"
            )
        elif stale.height:  # the stale series' rows go; the rest stay as they are
            con.register("spc_stale", stale.to_arrow())
            match = " and ".join(f"t.{c} = s.{c}" for c in keys)
            for table in (tables.spc, tables.series_change):
                con.execute(f"delete from {table} t using spc_stale s where {match}")
            con.unregister("spc_stale")

        if changed.height:
            con.execute(f"insert into {tables.spc} select * from {tables.staged}")
            new_change = series_change.join(changed, on=keys, how="semi").sort(
                *keys, "change_month", "change_id"
            )
            con.register("series_change_incoming", new_change.to_arrow())
            con.execute(f"insert into {tables.series_change} select * from series_change_incoming")
            con.unregister("series_change_incoming")
        con.register("spc_state_incoming", fingerprints.sort(keys).to_arrow())
        con.execute(f"create or replace table {tables.state} as select * from spc_state_incoming")
        con.unregister("spc_state_incoming")
        token = f"written by the fct_spc refresh {uuid.uuid4().hex}"
        for table in tables.owned():
            con.execute(f"comment on table {table} is '{token}'")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def spc_row_problems(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> list[str]:
    """Fact rows with no SPC row, SPC rows with no fact row, and duplicated SPC rows.

    Empty means ``spc_points`` covers every fact row of every level and tier exactly once;
    this is what the blocking check asserts before dbt selects the tiers' tables from it
    (which dbt tests in turn: ``dbt_project/models/spc/_spc.yml``).

    Set-wise, in one query: both sides are counted by key (level, tier, series, measure,
    period) and joined once, instead of an ``except all`` each way per source plus three
    more passes over ``spc_points``. A key with ``f`` fact rows and ``k`` SPC rows gives
    ``max(f - k, 0)`` rows missing and ``max(k - f, 0)`` extra, as ``except all`` counts
    them (nulls matching nulls), and ``k - 1`` duplicates.
    """
    used = sources(schema, public_schema)
    facts = "\n union all ".join(
        f"select '{s.level}' as level, '{s.tier}' as tier, {s.series_key} as series_key,"
        f" measure_code, period from {table}"
        for s, table in used
    )
    keys = ("level", "tier", "series_key", "measure_code", "period")
    on = " and ".join(f"f.{k} is not distinct from s.{k}" for k in keys)
    by_source = con.execute(
        f"""
        with f as (
            select {", ".join(keys)}, count(*) as n from ({facts}) group by all
        ), s as (
            select {", ".join(keys)}, count(*) as n,
                count(*) filter (where segment is null or segment_start is null
                    or in_baseline is null or limits_basis is null) as unexplained
            from {schema}.{SPC_POINTS_TABLE} group by all
        )
        select coalesce(f.level, s.level), coalesce(f.tier, s.tier),
            sum(greatest(coalesce(f.n, 0) - coalesce(s.n, 0), 0)),
            sum(greatest(coalesce(s.n, 0) - coalesce(f.n, 0), 0)),
            sum(greatest(coalesce(s.n, 0) - 1, 0)),
            sum(coalesce(s.unexplained, 0))
        from f full join s on {on}
        group by all
        """
    ).fetchall()
    counts = {(level, tier): figures for level, tier, *figures in by_source}
    problems = []
    duplicates = sum(int(figures[2] or 0) for figures in counts.values())
    if duplicates:
        problems.append(f"{duplicates} duplicated (series, period) rows in {SPC_POINTS_TABLE}")
    for s, _ in used:
        missing, extra, _, _ = (int(x or 0) for x in counts.get((s.level, s.tier), (0,) * 4))
        if missing:
            problems.append(f"{missing} {s.table} rows have no {s.tier} {s.level} SPC row")
        if extra:
            problems.append(f"{extra} {s.tier} {s.level} SPC rows match no {s.table} row")
    unexplained = sum(int(figures[3] or 0) for figures in counts.values())
    if unexplained:
        problems.append(
            f"{unexplained} {SPC_POINTS_TABLE} rows without segment, segment_start, in_baseline "
            "or limits_basis"
        )
    # A series is cut (has a segment after 0) exactly when spc_series_changes records a
    # change that rebases it (docs/programme-impact.md section 3).
    [(miscut,)] = con.execute(
        f"""
        with cut as (
            select level, tier, series_key, measure_code, max(segment) > 0 as is_cut
            from {schema}.{SPC_POINTS_TABLE} group by all
        ), rebased as (
            select distinct level, tier, series_key, measure_code
            from {schema}.{SPC_SERIES_CHANGES_TABLE} where rebases
        )
        select count(*) from cut
        full join rebased using (level, tier, series_key, measure_code)
        where coalesce(cut.is_cut, false) <> (rebased.series_key is not null)
        """
    ).fetchall()
    if miscut:
        problems.append(
            f"{miscut} series whose segments disagree with the rebasing changes in "
            f"{SPC_SERIES_CHANGES_TABLE}"
        )
    return problems


_READS = (*SOURCE_TABLES, "dim_measure", CHANGE_TABLE, PUB_CHANGE_TABLE)
_UPSTREAM = [k for k in (*MART_KEYS, *PUBLIC_KEYS) if k.path[-1] in _READS]
# A renamed mart would otherwise silently drop out of the dependencies (and the run order).
_missing = set(_READS) - {k.path[-1] for k in _UPSTREAM}
if _missing:
    raise RuntimeError(f"spc_points reads marts that the dbt project does not define: {_missing}")


@dg.asset(
    key=SPC_POINTS_KEY,
    deps=_UPSTREAM,
    group_name="marts",
    kinds={"duckdb", "polars"},
    pool=DUCKDB_WRITER_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "one_spc_row_per_fact_row",
            asset=SPC_POINTS_KEY,
            blocking=True,
            description="Every fact row at organisation, sector, ICB and region level (and "
            "every public-tier row) has exactly one spc_points row, and no spc_points row "
            "lacks one; every row has its segment and baseline, and a series is cut exactly "
            "when spc_series_changes records a rebasing change. If it fails: the SPC step "
            "and the marts it read disagree; rerun the pipeline (a full SPC rebuild happens "
            "when the stored state cannot be trusted) and, if it persists, read the problems "
            "listed in this check's metadata.",
        )
    ],
    description="SPC (Making Data Count) for every measure series at organisation, sector, "
    "ICB and region level, both tiers, per the catalogue's chart, direction, target and "
    "baseline, segmented at recorded changes that rebase (docs/programme-impact.md); only "
    "series whose inputs changed since the last run are recomputed. Written to "
    "marts.spc_points and marts.spc_series_changes, dbt sources from which dbt builds "
    "fct_spc / fct_series_change (internal tier) and pub_spc / pub_series_change (public "
    "tier) in the next step.",
)
def spc_points(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    """Recomputes every series whose inputs changed since the last run, whole (limits use
    the series' full history, so a late return for one month can move every point's limits
    and flags), and keeps the others' rows untouched (:func:`refresh_spc`)."""
    settings = load_settings()
    release_memory()  # what earlier steps of this process freed (pipelines/memory.py)
    with working_connection(settings.working_db) as con:
        refresh = refresh_spc(con)
        [(rows, change_rows)] = con.execute(
            f"""select (select count(*) from marts.{SPC_POINTS_TABLE}),
                   (select count(*) from marts.{SPC_SERIES_CHANGES_TABLE})"""
        ).fetchall()
        problems = spc_row_problems(con)
        summary = con.execute(
            f"""select tier || '/' || level, count(*),
                   count(distinct (series_key, measure_code)),
                   count(*) filter (where special_cause_flag)
            from marts.{SPC_POINTS_TABLE} group by all order by 1"""
        ).fetchall()
    release_memory()  # SPC's frames, before the impact models and publication
    how = f"full rebuild ({refresh.reason})" if refresh.full else "incremental"
    context.log.info(
        f"spc_points: {how}: {refresh.recomputed} of {refresh.series} series recomputed"
        f" ({refresh.spc_rows_written} rows), {refresh.removed} removed; {rows} rows;"
        f" by tier/level (rows, series, signals): {summary};"
        f" marts.{SPC_SERIES_CHANGES_TABLE}: {change_rows} rows"
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "series_change_rows": change_rows,
            "full_rebuild": refresh.full,
            "series_recomputed": refresh.recomputed,
            "series_removed": refresh.removed,
            "rows_recomputed": refresh.spc_rows_written,
            "rows_by_tier_level": {key: n for key, n, _, _ in summary},
            "series_by_tier_level": {key: n for key, _, n, _ in summary},
            "special_cause_points": sum(n for _, _, _, n in summary),
        }
    )
    yield dg.AssetCheckResult(
        check_name="one_spc_row_per_fact_row",
        asset_key=SPC_POINTS_KEY,
        passed=not problems,
        metadata={"problems": problems[:20]},
    )


defs = dg.Definitions(assets=[spc_points])
