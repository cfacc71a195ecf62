"""``marts.fct_spc``: Making Data Count SPC for every series the dashboards draw.

dbt builds the fact marts; SPC needs segment-aware run rules that SQL expresses badly, so this
asset reads the facts back from the working file one measure at a time, runs
:func:`pipelines.spc.spc_by_series` on all of that measure's series at once (vectorised, no
per-series loop), and streams the results into one table, replaced whole in one transaction,
that the publication copies and the dashboard reads. One row per fact row at each level:

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
are written, by the same step, to ``marts.fct_series_change`` and its public rows to
``public.pub_series_change``.

The public rows are also written, by the same step, to ``public.pub_spc`` (the public
tier's own SPC table, published in ``public/warehouse.duckdb``), without the columns that
belong to the internal tier (tier, org_code, organisations_reporting, target: the target
is in ``dim_measure``) and with the limits of a suppressed month nulled: a suppressed cell
is null in every figure (the disclosure scan's rule), and the month is a gap in the chart.
The public dashboard reads only that table, so the public site stands on the public file
alone. Same step rather than an asset of its own: publication requires ``fct_spc`` to be
built in the run, so ``pub_spc`` can never be older than the run that publishes it.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg
import duckdb
import polars as pl

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.dbt import MART_KEYS, PUBLIC_KEYS
from pipelines.defs.resources import WorkingFileRun
from pipelines.impact.changes import (
    SERIES_CHANGE_SCHEMA,
    baseline_window_mask,
    changes_for_series,
    rebase_points,
    series_changes,
    series_places,
)
from pipelines.settings import load_settings
from pipelines.spc import spc_by_series
from pipelines.warehouse import working_connection

FCT_SPC_TABLE = "fct_spc"
FCT_SPC_KEY = dg.AssetKey(["marts", FCT_SPC_TABLE])
PUB_SPC_TABLE = "pub_spc"
SERIES_CHANGE_TABLE = "fct_series_change"
PUB_SERIES_CHANGE_TABLE = "pub_series_change"
#: The change register, internal and public (dbt models; docs/programme-impact.md §1).
CHANGE_TABLE = "dim_change"
PUB_CHANGE_TABLE = "pub_change"
#: The SPC module's name for limits on the points a caller's mask gave, and ours.
LIMITS_BASIS_NAMES = {"given_points": "baseline_window"}

#: Catalogue wording (dim_measure.improvement_direction) -> the SPC module's wording.
DIRECTION_FROM_CATALOGUE: dict[str, str] = {
    "higher": "increase",
    "lower": "decrease",
    "neutral": "neutral",
}


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

#: ``pub_spc``: the public rows of ``fct_spc`` without what belongs to the internal tier.
PUB_SPC_DROPPED = frozenset({"tier", "org_code", "organisations_reporting", "target"})
#: Per-month statistics, nulled on a suppressed month (series-level icons are kept). The
#: segment number too: the disclosure scan holds every number of a suppressed cell to null;
#: ``segment_start`` (a month) still says which segment the gap falls in.
PUB_SPC_NULLED_WHEN_SUPPRESSED = ("centre", "lpl", "upl", "near_lpl", "near_upl", "segment")
PUB_SPC_COLUMNS: tuple[str, ...] = tuple(c for c in FCT_SPC_SCHEMA if c not in PUB_SPC_DROPPED)


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
        if direction not in DIRECTION_FROM_CATALOGUE:
            raise ValueError(f"unknown improvement_direction {direction!r} for measure {code}")
        if chart not in ("xmr", "p", "u", "p_prime", "u_prime"):
            raise ValueError(f"unknown spc_chart {chart!r} for measure {code}")
        measures.append(
            MeasureSpc(
                code,
                chart,
                DIRECTION_FROM_CATALOGUE[direction],
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
    # the pipeline fct_spc depends on both tables, so they always exist there.
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


def _facts_sql(schema: str, public_schema: str | None) -> str:
    """One measure's facts at every level (parameter: the measure code, once per level).

    Ordered by series then period so that ``spc_by_series`` finds the rows already grouped
    and skips its sort, and the table comes out in a useful order.
    """
    parts = [
        f"""
        select '{s.level}' as level, '{s.tier}' as tier, {s.series_key} as series_key,
               {s.org_code} as org_code, {s.sector_code} as sector_code,
               {s.icb_code} as icb_code, programme_code, measure_code, period,
               cast({s.organisations_reporting} as bigint) as organisations_reporting,
               cast(numerator as bigint) as numerator, cast(denominator as bigint) as denominator,
               cast(value as double) as value,
               coalesce(cast({s.is_suppressed} as boolean), false) as is_suppressed
        from {table}
        where measure_code = ?
        """
        for s, table in sources(schema, public_schema)
    ]
    return " union all ".join(parts) + " order by level, tier, series_key, period"


def measure_series_changes(
    facts: pl.DataFrame, changes: dict[str, pl.DataFrame] | None
) -> pl.DataFrame:
    """``fct_series_change`` rows of one measure's series: each tier's series against its
    own register (docs/programme-impact.md section 1)."""
    if not changes or facts.is_empty():
        return pl.DataFrame(schema=SERIES_CHANGE_SCHEMA)
    places = series_places(facts)
    frames = [
        series_changes(places, changes_for_series(places.filter(pl.col("tier") == tier), table))
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
    options = {
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
    sql = _facts_sql(schema, public_schema)
    n_sources = len(sources(schema, public_schema))
    changes = load_changes(con, schema, public_schema)
    for measure in catalogue_settings(con, schema, public_schema):
        facts = con.execute(sql, [measure.code] * n_sources).pl()
        if facts.height:
            series_change = measure_series_changes(facts, changes)
            yield spc_for_measure(facts, measure, series_change=series_change), series_change


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
    table: str = f"marts.{SERIES_CHANGE_TABLE}",
    public_table: str | None = f"public.{PUB_SERIES_CHANGE_TABLE}",
) -> tuple[int, int]:
    """Replace ``table`` with ``frame`` and ``public_table`` with its public rows, in one
    transaction. Returns the rows written to each."""
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
                select * from {table} where tier = 'public'
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
    table: str = f"marts.{FCT_SPC_TABLE}",
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


def write_pub_spc(
    con: duckdb.DuckDBPyConnection,
    source: str = f"marts.{FCT_SPC_TABLE}",
    table: str = f"public.{PUB_SPC_TABLE}",
) -> int:
    """Replace ``table`` with the public rows of ``source`` (one statement, so readers see
    old or new). Returns the rows written."""
    schema = table.rsplit(".", 1)[0] if "." in table else None
    columns = ", ".join(
        f"case when not is_suppressed then {c} end as {c}"
        if c in PUB_SPC_NULLED_WHEN_SUPPRESSED
        else c
        for c in PUB_SPC_COLUMNS
    )
    if schema:
        con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"""create or replace table {table} as
        select {columns} from {source} where tier = 'public'
        order by level, series_key, measure_code, period"""
    )
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def spc_row_problems(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", public_schema: str | None = "public"
) -> list[str]:
    """Fact rows with no SPC row, SPC rows with no fact row, and duplicated SPC rows.

    Empty means ``fct_spc`` covers every fact row of every level exactly once; this is what
    the blocking check asserts before publication.
    """
    problems = []
    [(duplicates,)] = con.execute(
        f"""
        select count(*) - count(distinct (level, tier, series_key, measure_code, period))
        from {schema}.{FCT_SPC_TABLE}
        """
    ).fetchall()
    if duplicates:
        problems.append(f"{duplicates} duplicated (series, period) rows in {FCT_SPC_TABLE}")
    for s, table in sources(schema, public_schema):
        [(missing, extra)] = con.execute(
            f"""
            with facts as (
                select {s.series_key} as series_key, measure_code, period
                from {table}
            ), spc as (
                select series_key, measure_code, period from {schema}.{FCT_SPC_TABLE}
                where level = '{s.level}' and tier = '{s.tier}'
            )
            select
                (select count(*) from (select * from facts except all select * from spc)),
                (select count(*) from (select * from spc except all select * from facts))
            """
        ).fetchall()
        if missing:
            problems.append(f"{missing} {s.table} rows have no {s.tier} {s.level} SPC row")
        if extra:
            problems.append(f"{extra} {s.tier} {s.level} SPC rows match no {s.table} row")
    [(unexplained,)] = con.execute(
        f"""select count(*) from {schema}.{FCT_SPC_TABLE}
        where segment is null or segment_start is null or in_baseline is null
           or limits_basis is null"""
    ).fetchall()
    if unexplained:
        problems.append(
            f"{unexplained} {FCT_SPC_TABLE} rows without segment, segment_start, in_baseline "
            "or limits_basis"
        )
    # A series is cut (has a segment after 0) exactly when fct_series_change records a
    # change that rebases it (docs/programme-impact.md section 3).
    [(miscut,)] = con.execute(
        f"""
        with cut as (
            select level, tier, series_key, measure_code, max(segment) > 0 as is_cut
            from {schema}.{FCT_SPC_TABLE} group by all
        ), rebased as (
            select distinct level, tier, series_key, measure_code
            from {schema}.{SERIES_CHANGE_TABLE} where rebases
        )
        select count(*) from cut
        full join rebased using (level, tier, series_key, measure_code)
        where coalesce(cut.is_cut, false) <> (rebased.series_key is not null)
        """
    ).fetchall()
    if miscut:
        problems.append(
            f"{miscut} series whose segments disagree with the rebasing changes in "
            f"{SERIES_CHANGE_TABLE}"
        )
    if public_schema is not None:
        [(missing, extra)] = con.execute(
            f"""
            with fct as (
                select * from {schema}.{SERIES_CHANGE_TABLE} where tier = 'public'
            ), pub as (select * from {public_schema}.{PUB_SERIES_CHANGE_TABLE})
            select
                (select count(*) from (select * from fct except all select * from pub)),
                (select count(*) from (select * from pub except all select * from fct))
            """
        ).fetchall()
        if missing or extra:
            problems.append(
                f"{PUB_SERIES_CHANGE_TABLE}: {missing} public {SERIES_CHANGE_TABLE} row(s) "
                f"missing, {extra} row(s) that are not public {SERIES_CHANGE_TABLE} rows"
            )
        # pub_spc is exactly the public rows of fct_spc, keyed the same way.
        keys = "level, series_key, measure_code, period, numerator, denominator, is_suppressed"
        [(missing, extra)] = con.execute(
            f"""
            with spc as (
                select {keys} from {schema}.{FCT_SPC_TABLE} where tier = 'public'
            ), pub as (select {keys} from {public_schema}.{PUB_SPC_TABLE})
            select
                (select count(*) from (select * from spc except all select * from pub)),
                (select count(*) from (select * from pub except all select * from spc))
            """
        ).fetchall()
        if missing or extra:
            problems.append(
                f"{PUB_SPC_TABLE}: {missing} public {FCT_SPC_TABLE} row(s) missing,"
                f" {extra} row(s) that are not public {FCT_SPC_TABLE} rows"
            )
    return problems


_READS = (*SOURCE_TABLES, "dim_measure", CHANGE_TABLE, PUB_CHANGE_TABLE)
_UPSTREAM = [k for k in (*MART_KEYS, *PUBLIC_KEYS) if k.path[-1] in _READS]
# A renamed mart would otherwise silently drop out of the dependencies (and the run order).
_missing = set(_READS) - {k.path[-1] for k in _UPSTREAM}
if _missing:
    raise RuntimeError(f"fct_spc reads marts that the dbt project does not define: {_missing}")


@dg.asset(
    key=FCT_SPC_KEY,
    deps=_UPSTREAM,
    group_name="marts",
    kinds={"duckdb", "polars"},
    pool=DUCKDB_WRITER_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "one_spc_row_per_fact_row",
            asset=FCT_SPC_KEY,
            blocking=True,
            description="Every fact row at organisation, sector, ICB and region level (and "
            "every public-tier row) has exactly one fct_spc row, and no fct_spc row lacks one; "
            "public.pub_spc holds exactly the public rows; every row has its segment and "
            "baseline, a series is cut exactly when fct_series_change records a rebasing "
            "change, and public.pub_series_change holds exactly its public rows.",
        )
    ],
    description="SPC (Making Data Count) for every measure series at organisation, sector, "
    "ICB and region level, per the catalogue's chart, direction, target and baseline, "
    "segmented at recorded changes that rebase (docs/programme-impact.md); replaced whole. "
    "The public tier's rows also go to public.pub_spc, which the public tier publishes; "
    "the changes that apply to each series go to marts.fct_series_change and "
    "public.pub_series_change.",
)
def fct_spc(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    """Recomputed whole on every run: limits use each series' full history, so a late
    return for one month can move every point's limits and flags."""
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        series_change: list[pl.DataFrame] = []

        def spc_frames() -> Iterator[pl.DataFrame]:
            for spc, changes in iter_spc_and_series_changes(con):
                series_change.append(changes)
                yield spc

        rows = write_fct_spc(con, spc_frames())
        public_rows = write_pub_spc(con)
        change_rows, public_change_rows = write_series_change(
            con,
            pl.concat(series_change)
            if series_change
            else pl.DataFrame(schema=SERIES_CHANGE_SCHEMA),
        )
        problems = spc_row_problems(con)
        summary = con.execute(
            f"""select tier || '/' || level, count(*),
                   count(distinct (series_key, measure_code)),
                   count(*) filter (where special_cause_flag)
            from marts.{FCT_SPC_TABLE} group by all order by 1"""
        ).fetchall()
    context.log.info(
        f"fct_spc: {rows} rows; by tier/level (rows, series, signals): {summary};"
        f" public.{PUB_SPC_TABLE}: {public_rows} rows; marts.{SERIES_CHANGE_TABLE}:"
        f" {change_rows} rows, public.{PUB_SERIES_CHANGE_TABLE}: {public_change_rows} rows"
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "pub_spc_rows": public_rows,
            "series_change_rows": change_rows,
            "pub_series_change_rows": public_change_rows,
            "rows_by_tier_level": {key: n for key, n, _, _ in summary},
            "series_by_tier_level": {key: n for key, _, n, _ in summary},
            "special_cause_points": sum(n for _, _, _, n in summary),
        }
    )
    yield dg.AssetCheckResult(
        check_name="one_spc_row_per_fact_row",
        asset_key=FCT_SPC_KEY,
        passed=not problems,
        metadata={"problems": problems[:20]},
    )


defs = dg.Definitions(assets=[fct_spc])
