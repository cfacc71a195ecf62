"""``fct_spc`` on a small hand-made warehouse: same answers as the SPC module, one row per fact
row at every level, the catalogue's direction wording mapped, and the Dagster asset's check."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from pipelines.defs.resources import WorkingFileRun
from pipelines.defs.spc import (
    FCT_SPC_SCHEMA,
    LEVELS,
    SPC_POINTS_KEY,
    build_fct_spc,
    build_series_change,
    spc_points,
    spc_row_problems,
    write_fct_spc,
    write_pub_spc,
    write_series_change,
)
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.spc import spc_by_series

SPC_OUTPUTS = [
    "value",
    "centre",
    "lpl",
    "upl",
    "near_lpl",
    "near_upl",
    "trial_limits",
    "special_cause_flag",
    "special_cause_type",
    "special_cause_label",
    "point_type",
    "variation_icon",
    "assurance_type",
]

MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(24)]

# (code, programme, multiplier, direction, chart, target)
MEASURES = [
    ("FALLS", "local", 1000, "lower", "u_prime", None),
    ("NEWS2", "deterioration", 100, "higher", "p_prime", 90.0),
    ("WAIT", "local", 1, "lower", "xmr", 10.0),
    ("REPORTING", "culture", 1000, "higher", "u_prime", None),
]
# org -> (icb, sector)
ORGS = {"A1": ("X1", "acute"), "A2": ("X1", "acute"), "C1": ("X1", "care"), "B1": ("X2", "acute")}


def _falls(org: str, i: int) -> tuple[int, int]:
    """Falls per bed days: A1 drops sharply in the last 9 months (an improvement when lower
    is better); the others wobble around a steady rate."""
    wobble = [0, 2, -1, 1, -2, 1, 0, -1, 2, -2, 1, 0]
    beds = 3000 + 10 * (i % 5)
    if org == "A1":
        return (2 if i >= 15 else 12 + wobble[i % 12]), beds
    if org == "B1" and i == 10:
        return 5, beds  # ICB X2 has only B1: a small count the public tier suppresses
    return 10 + wobble[(i + len(org)) % 12], beds


def _facts() -> list[tuple]:
    rows = []
    for org, (icb, sector) in ORGS.items():
        for i, month in enumerate(MONTHS):
            if org == "C1" and i < 23:
                continue  # a care home that has reported only once: one point, no limits
            n, d = _falls(org, i)
            rows.append((org, "FALLS", month, sector, icb, "local", n, d, 1000))
            rows.append((org, "REPORTING", month, sector, icb, "culture", 30 + i % 4, d, 1000))
            if sector == "acute":
                audited = 40 + i % 3
                on_time = audited - (i + len(org)) % 5 - (1 if i == 7 else 0)
                # A zero denominator: the point is missing (null value), the row stays.
                if org == "A2" and i == 5:
                    on_time, audited = 0, 0
                rows.append(
                    (org, "NEWS2", month, sector, icb, "deterioration", on_time, audited, 100)
                )
                rows.append((org, "WAIT", month, sector, icb, "local", 9 + i % 4, 1, 1))
    return rows


CHANGE_DDL = """create table {table} (change_id varchar, change_date date, change_month date,
    programme_code varchar, measure_code varchar, scope varchar, scope_code varchar,
    kind varchar, rebase boolean, description varchar)"""

PUBLIC_TABLES = {
    "pub_measure_by_sector_monthly": "fct_measure_by_sector_monthly",
    "pub_measure_by_icb_monthly": "fct_measure_by_icb_monthly",
    "pub_measure_by_region_monthly": "fct_measure_by_programme_monthly",
}


def derive_tables(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the sector, ICB and region marts and the public tier from
    ``marts.fct_measure_monthly``, as dbt would after a change to it."""
    rollups = {
        "fct_measure_by_sector_monthly": "icb_code, sector_code,",
        "fct_measure_by_icb_monthly": "icb_code,",
        "fct_measure_by_programme_monthly": "",
    }
    for table, keys in rollups.items():
        con.execute(
            f"""create or replace table marts.{table} as
            select {keys} measure_code, period, programme_code,
                   count(*) as organisations_reporting,
                   sum(numerator)::bigint as numerator, sum(denominator)::bigint as denominator,
                   case when sum(denominator) = 0 then null
                        else sum(numerator) * max(multiplier) / sum(denominator) end as value
            from marts.fct_measure_monthly group by all"""
        )
    for public, source in PUBLIC_TABLES.items():
        con.execute(
            f"""create or replace table public.{public} as
            with small as (
                select * exclude (organisations_reporting, numerator, denominator, value),
                       numerator between 1 and 7 or denominator between 1 and 7 as is_suppressed,
                       round(numerator / 5) * 5 as numerator, round(denominator / 5) * 5
                           as denominator, numerator as raw_numerator
                from marts.{source}
            )
            select * exclude (numerator, denominator, raw_numerator),
                   case when is_suppressed then null else numerator end::bigint as numerator,
                   case when is_suppressed then null else denominator end::bigint as denominator,
                   case when is_suppressed or denominator = 0 then null
                        else numerator * (select multiplier from marts.dim_measure d
                                          where d.measure_code = small.measure_code)
                             / denominator end as value,
                   case when is_suppressed then 'primary' end as suppression_reason
            from small"""
        )


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the marts fct_spc reads, rolled up as dbt rolls them up,
    and a public tier the way the disclosure models write it (simplified: counts of 1-7
    suppressed as null + flag, the rest rounded to 5, rates from the rounded counts)."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        """create table marts.dim_measure (measure_code varchar, programme_code varchar,
        multiplier integer, improvement_direction varchar, spc_chart varchar, target double,
        baseline_from date, baseline_to date, baseline_months integer)"""
    )
    con.executemany(
        "insert into marts.dim_measure values (?, ?, ?, ?, ?, ?, null, null, null)", MEASURES
    )
    # An empty change register (tests/test_series_changes.py records changes).
    con.execute(CHANGE_DDL.format(table="marts.dim_change"))
    con.execute(
        """create table marts.fct_measure_monthly (org_code varchar, measure_code varchar,
        period date, sector_code varchar, icb_code varchar, programme_code varchar,
        numerator bigint, denominator bigint, multiplier integer)"""
    )
    con.executemany(
        "insert into marts.fct_measure_monthly values (?, ?, ?, ?, ?, ?, ?, ?, ?)", _facts()
    )
    con.execute(
        """alter table marts.fct_measure_monthly add column value double;
        update marts.fct_measure_monthly
            set value = case when denominator = 0 then null
                             else numerator * multiplier / denominator end"""
    )
    con.execute("create schema public")
    con.execute(CHANGE_DDL.format(table="public.pub_change"))
    derive_tables(con)
    return con


def _series(
    frame: pl.DataFrame, level: str, key: str, measure: str, tier: str = "internal"
) -> pl.DataFrame:
    return frame.filter(
        (pl.col("level") == level)
        & (pl.col("tier") == tier)
        & (pl.col("series_key") == key)
        & (pl.col("measure_code") == measure)
    ).sort("period")


def test_rows_equal_spc_by_series_one_series_at_a_time(warehouse):
    spc = build_fct_spc(warehouse)
    assert list(spc.columns) == list(FCT_SPC_SCHEMA)
    catalogue = {m[0]: m for m in MEASURES}
    direction = {"lower": "decrease", "higher": "increase"}
    keys = ["level", "tier", "series_key", "measure_code", "period"]
    expected = []
    for (_, _, _, measure), rows in spc.group_by(["level", "tier", "series_key", "measure_code"]):
        _, _, multiplier, better, chart, target = catalogue[measure]
        inputs = rows.select(*keys, "numerator", "denominator", "value").sort("period")
        options = {"chart": chart, "improvement_direction": direction[better], "target": target}
        if chart == "xmr":
            one = spc_by_series(inputs, [], "period", value_col="value", **options)
        else:
            one = spc_by_series(
                inputs,
                [],
                "period",
                numerator_col="numerator",
                denominator_col="denominator",
                multiplier=float(multiplier),
                **options,
            )
        expected.append(one.rename({"mean": "centre"}).select(*keys, *SPC_OUTPUTS))
    # Internal: organisation, sector, ICB and region series; public: sector, ICB, region.
    assert len(expected) == (14 + 10 + 8 + 4) + (10 + 8 + 4)
    assert_frame_equal(
        spc.select(*keys, *SPC_OUTPUTS).sort(keys),
        pl.concat(expected).select(*keys, *SPC_OUTPUTS).sort(keys),
        check_exact=False,
        check_dtypes=False,
    )


def test_values_and_limits_are_on_the_unit_scale(warehouse):
    spc = build_fct_spc(warehouse)
    region_news2 = _series(spc, "region", "region", "NEWS2")
    assert 80 < region_news2["centre"][0] < 100  # a percentage, not a proportion
    [(facts_value,)] = warehouse.execute(
        "select value from marts.fct_measure_by_programme_monthly "
        "where measure_code = 'NEWS2' and period = '2023-04-01'"
    ).fetchall()
    assert region_news2["value"][0] == pytest.approx(facts_value)
    # XmR reads the mart's value, already on the unit scale: the multiplier is not applied twice.
    wait = _series(spc, "organisation", "A1", "WAIT")
    assert wait["value"].to_list() == [9 + i % 4 for i in range(24)]
    assert 9 < wait["centre"][0] < 13
    assert wait["assurance_type"][0] == "inconsistent"  # target 10 inside the limits


def test_every_fact_row_has_exactly_one_spc_row_at_every_level(warehouse):
    spc = build_fct_spc(warehouse)
    assert set(spc["level"]) == set(LEVELS)
    expected = {
        ("internal", "organisation"): "marts.fct_measure_monthly",
        ("internal", "sector"): "marts.fct_measure_by_sector_monthly",
        ("internal", "icb"): "marts.fct_measure_by_icb_monthly",
        ("internal", "region"): "marts.fct_measure_by_programme_monthly",
        ("public", "sector"): "public.pub_measure_by_sector_monthly",
        ("public", "icb"): "public.pub_measure_by_icb_monthly",
        ("public", "region"): "public.pub_measure_by_region_monthly",
    }
    assert set(spc.select("tier", "level").unique().iter_rows()) == set(expected)
    for (tier, level), table in expected.items():
        [(facts,)] = warehouse.execute(f"select count(*) from {table}").fetchall()
        assert spc.filter((pl.col("tier") == tier) & (pl.col("level") == level)).height == facts
    keys = spc.select("level", "tier", "series_key", "measure_code", "period")
    assert keys.is_duplicated().sum() == 0
    sector = _series(spc, "sector", "X1|acute", "FALLS")
    assert sector["icb_code"].unique().to_list() == ["X1"]
    assert sector["sector_code"].unique().to_list() == ["acute"]
    assert sector["org_code"].null_count() == sector.height
    assert sector["organisations_reporting"].to_list() == [2] * 24
    region = _series(spc, "region", "region", "FALLS")
    assert region.select("org_code", "sector_code", "icb_code").null_count().row(0) == (24, 24, 24)
    assert region["organisations_reporting"][-1] == 4
    assert not spc.filter(pl.col("tier") == "internal")["is_suppressed"].any()

    write_fct_spc(warehouse, spc)
    write_pub_spc(warehouse)
    write_series_change(warehouse, build_series_change(warehouse))
    assert spc_row_problems(warehouse) == []
    internal_icb_first_month = (
        (pl.col("tier") == "internal")
        & (pl.col("level") == "icb")
        & (pl.col("period") == MONTHS[0])
    )
    write_fct_spc(warehouse, spc.filter(~internal_icb_first_month))
    assert spc_row_problems(warehouse) == [
        "8 fct_measure_by_icb_monthly rows have no internal icb SPC row"
    ]
    write_fct_spc(warehouse, pl.concat([spc, spc.head(1)]))
    assert spc_row_problems(warehouse)[0].startswith("1 duplicated")


def test_public_tier_charts_rounded_counts_and_leaves_suppressed_months_out(warehouse):
    spc = build_fct_spc(warehouse)
    public = _series(spc, "icb", "X2", "FALLS", tier="public")
    assert public.height == 24
    gap = public.filter(pl.col("period") == MONTHS[10])
    assert gap["is_suppressed"].to_list() == [True]
    assert gap.select("numerator", "denominator", "value", "point_type").row(0) == (None,) * 4
    shown = public.filter(~pl.col("is_suppressed"))
    assert (shown["numerator"] % 5 == 0).all() and (shown["denominator"] % 5 == 0).all()
    # The same series, internal: every month charted, from the unrounded counts.
    internal = _series(spc, "icb", "X2", "FALLS")
    assert internal["value"].null_count() == 0
    assert internal["numerator"].to_list()[10] == 5
    # SPC of the public series is exactly the SPC module's on the public counts.
    expected = spc_by_series(
        public.select("period", "numerator", "denominator"),
        [],
        "period",
        numerator_col="numerator",
        denominator_col="denominator",
        chart="u_prime",
        improvement_direction="decrease",
        multiplier=1000.0,
    )
    assert_frame_equal(
        public.select("centre", "lpl", "upl", "point_type"),
        expected.rename({"mean": "centre"}).select("centre", "lpl", "upl", "point_type"),
    )
    # Without a public schema (the internal snapshot on its own): internal rows only.
    assert set(build_fct_spc(warehouse, public_schema=None)["tier"]) == {"internal"}


def _contract_columns(model: str) -> list[str]:
    """The columns of a dbt SPC model's contract (dbt_project/models/spc/_spc.yml)."""
    spec = yaml.safe_load((PROJECT_ROOT / "dbt_project/models/spc/_spc.yml").read_text())
    [found] = [m for m in spec["models"] if m["name"] == model]
    return [column["name"] for column in found["columns"]]


def test_pub_spc_is_the_public_rows_alone_with_suppressed_months_blank(warehouse):
    spc = build_fct_spc(warehouse)
    write_fct_spc(warehouse, spc)
    write_series_change(warehouse, build_series_change(warehouse))
    public = spc.filter(pl.col("tier") == "public")
    assert write_pub_spc(warehouse) == public.height > 0
    pub = warehouse.execute("select * from public.pub_spc").pl()
    # Nothing that belongs to the internal tier: no organisation, no count of them.
    assert pub.columns == _contract_columns("pub_spc")
    assert not {"tier", "org_code", "organisations_reporting"} & set(pub.columns)
    assert set(pub["level"]) == {"region", "icb", "sector"}
    # A suppressed month carries no figure at all, limits included; the others are the
    # public rows of fct_spc unchanged.
    gap = pub.filter(pl.col("is_suppressed"))
    assert gap.height > 0
    for column in ("numerator", "denominator", "value", "centre", "lpl", "upl"):
        assert gap[column].null_count() == gap.height, column
    shown = pub.filter(~pl.col("is_suppressed")).sort(
        "level", "series_key", "measure_code", "period"
    )
    expected = public.filter(~pl.col("is_suppressed")).sort(
        "level", "series_key", "measure_code", "period"
    )
    assert_frame_equal(shown, expected.select(pub.columns))
    # write_pub_spc renders dbt's own pub_spc model: tests/impact holds the two equal.


def test_direction_from_the_catalogue_turns_a_fall_into_improvement(warehouse):
    spc = build_fct_spc(warehouse)
    falls = _series(spc, "organisation", "A1", "FALLS")
    assert set(falls["improvement_direction"]) == {"decrease"}
    assert falls["point_type"][-1] == "special_cause_improvement"
    assert falls["variation_icon"][-1] == "improvement_low"
    # The same kind of drop is a concern where higher is better.
    warehouse.execute(
        "update marts.dim_measure set improvement_direction = 'higher' where measure_code = 'FALLS'"
    )
    falls = _series(build_fct_spc(warehouse), "organisation", "A1", "FALLS")
    assert falls["point_type"][-1] == "special_cause_concern"
    assert falls["variation_icon"][-1] == "concern_low"
    warehouse.execute(
        "update marts.dim_measure set improvement_direction = 'neutral' "
        "where measure_code = 'FALLS'"
    )
    falls = _series(build_fct_spc(warehouse), "organisation", "A1", "FALLS")
    assert falls["point_type"][-1] == "special_cause_neutral_low"
    warehouse.execute(
        "update marts.dim_measure set improvement_direction = 'down' where measure_code = 'FALLS'"
    )
    with pytest.raises(ValueError, match="improvement_direction"):
        build_fct_spc(warehouse)


def test_short_and_missing_points_keep_their_rows(warehouse):
    spc = build_fct_spc(warehouse)
    single = _series(spc, "organisation", "C1", "FALLS")
    assert single.height == 1
    assert single.select("lpl", "upl", "centre").row(0) == (None, None, single["value"][0])
    assert single["trial_limits"].to_list() == [True]
    assert single["assurance_type"].to_list() == [None]
    # A zero denominator is a missing point: its row stays, with the centre line but no flags
    # (and no P' limits, which depend on the point's own denominator).
    gap = _series(spc, "organisation", "A2", "NEWS2").filter(pl.col("period") == MONTHS[5])
    assert gap["value"].to_list() == [None]
    assert gap["point_type"].to_list() == [None]
    assert gap["centre"][0] is not None
    assert gap["special_cause_flag"].to_list() == [None]


def test_targets_give_assurance_only_with_a_direction_and_a_target(warehouse):
    spc = build_fct_spc(warehouse)
    assert _series(spc, "region", "region", "FALLS")["assurance_type"].unique().to_list() == [None]
    news2 = _series(spc, "region", "region", "NEWS2")
    assert news2["target"].unique().to_list() == [90.0]
    assert news2["assurance_type"].unique().to_list() == ["inconsistent"]


def test_empty_facts_give_an_empty_table(warehouse):
    for table in (
        "marts.fct_measure_monthly",
        "marts.fct_measure_by_sector_monthly",
        "marts.fct_measure_by_icb_monthly",
        "marts.fct_measure_by_programme_monthly",
        *(f"public.{table}" for table in PUBLIC_TABLES),
    ):
        warehouse.execute(f"delete from {table}")
    spc = build_fct_spc(warehouse)
    assert spc.height == 0
    assert spc.schema == pl.Schema(FCT_SPC_SCHEMA)


def test_the_asset_writes_the_table_and_passes_its_check(settings: Settings, warehouse):
    settings.working_db.parent.mkdir(parents=True)
    warehouse.execute(f"attach '{settings.working_db}' as working")
    warehouse.execute("create schema working.marts")
    for table in (
        "dim_measure",
        "dim_change",
        "fct_measure_monthly",
        "fct_measure_by_sector_monthly",
        "fct_measure_by_icb_monthly",
        "fct_measure_by_programme_monthly",
    ):
        warehouse.execute(f"create table working.marts.{table} as select * from marts.{table}")
    warehouse.execute("create schema working.public")
    for table in (*PUBLIC_TABLES, "pub_change"):
        warehouse.execute(f"create table working.public.{table} as select * from public.{table}")
    warehouse.execute("detach working")

    result = dg.materialize(
        [spc_points],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"working_file_run": WorkingFileRun()},
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert (check.asset_key, check.check_name, check.passed) == (
        SPC_POINTS_KEY,
        "one_spc_row_per_fact_row",
        True,
    )
    with duckdb.connect(str(settings.working_db), read_only=True) as con:
        [(rows,)] = con.execute("select count(*) from marts.spc_points").fetchall()
        [(public_rows,)] = con.execute(
            "select count(*) from marts.spc_points where tier = 'public'"
        ).fetchall()
        expected = build_fct_spc(con)
    assert rows == expected.height
    assert public_rows == expected.filter(pl.col("tier") == "public").height > 0
    [materialization] = result.asset_materializations_for_node("marts__spc_points")
    assert materialization.metadata["dagster/row_count"].value == rows


def test_a_rebasing_change_cuts_every_series_it_applies_to_and_the_check_agrees(warehouse):
    """A region-wide definition change in month 12 cuts every FALLS series (both tiers);
    fct_series_change records it on each, and the check notices a record gone missing."""
    change = (
        "('CHG-9', date '2024-04-01', date '2024-04-01', null, 'FALLS', 'region', null,"
        " 'definition_change', true, 'Falls now counted from the incident system')"
    )
    warehouse.execute(f"insert into marts.dim_change values {change}")
    warehouse.execute(f"insert into public.pub_change values {change}")
    spc = build_fct_spc(warehouse)
    falls = spc.filter(pl.col("measure_code") == "FALLS")
    # C1 (and so the care sector) reported only in the last month: the change is outside
    # their span and cuts nothing.
    late = pl.col("series_key").is_in(["C1", "X1|care"])
    cut = falls.filter((pl.col("period") >= MONTHS[12]) & ~late)
    assert set(cut["segment"]) == {1} and set(cut["segment_start"]) == {MONTHS[12]}
    assert set(falls.filter(pl.col("period") < MONTHS[12])["segment"]) == {0}
    assert set(falls.filter(late)["segment"]) == {0}
    assert set(spc.filter(pl.col("measure_code") != "FALLS")["segment"]) == {0}
    series_change = build_series_change(warehouse)
    assert set(series_change["change_id"]) == {"CHG-9"}
    assert series_change.filter(pl.col("series_key").is_in(["C1", "X1|care"])).is_empty()
    assert series_change["rebases"].all()
    assert (
        series_change.height == falls.filter(~late).select("level", "tier", "series_key").n_unique()
    )
    write_fct_spc(warehouse, spc)
    write_series_change(warehouse, series_change, public_table="public.pub_series_change")
    assert spc_row_problems(warehouse) == []
    pub = warehouse.execute("select * from public.pub_series_change").pl()
    assert pub.height == series_change.filter(pl.col("tier") == "public").height > 0
    write_series_change(warehouse, series_change.filter(pl.col("level") != "icb"))
    assert spc_row_problems(warehouse) == [
        "4 series whose segments disagree with the rebasing changes in spc_series_changes"
    ]
