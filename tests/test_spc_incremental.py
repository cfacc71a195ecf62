"""The SPC step (``spc_points``) recomputes only the series whose inputs changed: a second
run after one organisation's one month changed touches exactly the series that contain it,
leaves every other row as it was, and gives the same tables as a full rebuild; catalogue
settings and change register rows reach exactly the series they apply to; vanished series
go; a state that no longer matches the tables falls back to a full rebuild."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_fct_spc import MONTHS, PUBLIC_TABLES, derive_tables, warehouse  # noqa: F401

import pipelines.defs.spc as spc_module
from pipelines.defs.resources import WorkingFileRun
from pipelines.defs.spc import (
    SERIES_COLS,
    SpcTables,
    build_fct_spc,
    refresh_spc,
    series_chunks,
    spc_points,
    spc_row_problems,
    write_series_change,
)
from pipelines.settings import Settings

KEYS = list(SERIES_COLS)
#: Each table the refresh owns, with the columns that order it for comparison.
TABLES = {
    "marts.spc_points": [*KEYS, "period"],
    "marts.spc_series_changes": [*KEYS, "change_month", "change_id"],
    "marts.spc_series_state": KEYS,
}
#: A region-wide rebasing change to FALLS in month 12, in both registers, so the series
#: change tables are not empty.
FALLS_CHANGE = (
    "('CHG-9', date '2024-04-01', date '2024-04-01', null, 'FALLS', 'region', null,"
    " 'definition_change', true, 'Falls now counted from the incident system')"
)


@pytest.fixture
def built(warehouse):  # noqa: F811
    """The warehouse with a change on record and its SPC tables built once (a full build)."""
    for table in ("marts.dim_change", "public.pub_change"):
        warehouse.execute(f"insert into {table} values {FALLS_CHANGE}")
    first = refresh_spc(warehouse)
    assert first.full and first.recomputed == first.series == 58
    return warehouse


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    return {name: con.execute(f"select * from {name}").pl().sort(o) for name, o in TABLES.items()}


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    [(n,)] = con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return n == 1


def _series(frame: pl.DataFrame) -> set[tuple[str, ...]]:
    return set(frame.select(KEYS).unique().iter_rows())


def _without(frame: pl.DataFrame, series: set[tuple[str, ...]]) -> pl.DataFrame:
    """``frame`` without the rows of ``series``."""
    keys = frame.select(
        pl.col("level"),
        pl.col("tier") if "tier" in frame.columns else pl.lit("public").alias("tier"),
        pl.col("series_key"),
        pl.col("measure_code"),
    )
    hit = [row in series for row in keys.iter_rows()]
    return frame.filter(~pl.Series(hit, dtype=pl.Boolean))


def _assert_same_as_full_rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Every table equals, row for row and value for value, what a full rebuild of the same
    data writes; and the asset check passes."""
    incremental = _tables(con)
    assert spc_row_problems(con) == []
    rebuilt = refresh_spc(con, full=True)
    assert rebuilt.full and rebuilt.reason == "full rebuild asked for"
    for name, frame in _tables(con).items():
        assert_frame_equal(incremental[name], frame, check_exact=True)


def _assert_untouched(
    before: dict[str, pl.DataFrame],
    after: dict[str, pl.DataFrame],
    recomputed: set[tuple[str, ...]],
) -> None:
    for name in TABLES:
        if name == "marts.spc_series_state":
            continue
        assert_frame_equal(
            _without(after[name], recomputed),
            _without(before[name], recomputed),
            check_exact=True,
        )


def test_one_month_of_one_organisation_recomputes_only_the_series_that_contain_it(built):
    before = _tables(built)
    # A1 (ICB X1, acute) reports 60 more falls in month 5: enough to move the rounded public
    # counts too. Then the rollups and the public tier are rebuilt, as dbt would.
    built.execute(
        """update marts.fct_measure_monthly
        set numerator = numerator + 60, value = (numerator + 60) * multiplier / denominator
        where org_code = 'A1' and measure_code = 'FALLS' and period = ?""",
        [MONTHS[5]],
    )
    derive_tables(built)
    refresh = refresh_spc(built)
    assert not refresh.full and refresh.removed == 0
    recomputed = _series(refresh.recomputed_series)
    assert recomputed == {
        ("organisation", "internal", "A1", "FALLS"),
        ("sector", "internal", "X1|acute", "FALLS"),
        ("icb", "internal", "X1", "FALLS"),
        ("region", "internal", "region", "FALLS"),
        ("sector", "public", "X1|acute", "FALLS"),
        ("icb", "public", "X1", "FALLS"),
        ("region", "public", "region", "FALLS"),
    }
    assert refresh.spc_rows_written == 7 * 24
    after = _tables(built)
    # Every other row of every table is exactly as it was; the recomputed ones moved.
    _assert_untouched(before, after, recomputed)
    a1 = pl.col("series_key") == "A1"
    assert not after["marts.spc_points"].filter(a1).equals(before["marts.spc_points"].filter(a1))
    _assert_same_as_full_rebuild(built)
    # Nothing changed since: nothing is recomputed, nothing written.
    again = refresh_spc(built)
    assert (again.full, again.recomputed, again.removed, again.spc_rows_written) == (
        False,
        0,
        0,
        0,
    )
    assert_frame_equal(_tables(built)["marts.spc_points"], after["marts.spc_points"])


def test_a_catalogue_setting_recomputes_that_measures_series_only(built):
    before = _tables(built)
    built.execute(
        """update marts.dim_measure set baseline_from = ?, baseline_to = ?
        where measure_code = 'NEWS2'""",
        [MONTHS[0], MONTHS[11]],
    )
    refresh = refresh_spc(built)
    news2 = {s for s in _series(before["marts.spc_points"]) if s[3] == "NEWS2"}
    assert _series(refresh.recomputed_series) == news2
    # Organisations A1, A2, B1; sectors and ICBs X1 and X2 in both tiers; the region twice.
    assert len(news2) == 3 + 2 + 2 + 1 + 2 + 2 + 1
    after = _tables(built)
    _assert_untouched(before, after, news2)
    in_baseline = after["marts.spc_points"].filter(pl.col("measure_code") == "NEWS2")
    assert set(in_baseline.filter(pl.col("period") > MONTHS[11])["in_baseline"]) == {False}
    _assert_same_as_full_rebuild(built)


def test_a_register_row_recomputes_the_series_it_applies_to_only(built):
    before = _tables(built)
    # A rebasing change to ICB X2's WAIT series (internal register only: organisation B1,
    # sector X2|acute, ICB X2); a change outside every series' span reaches none.
    built.execute(
        """insert into marts.dim_change values
        ('CHG-10', date '2024-10-01', date '2024-10-01', null, 'WAIT', 'icb', 'X2',
         'new_process', true, 'Triage moved'),
        ('CHG-11', date '2030-01-01', date '2030-01-01', null, null, 'region', null,
         'new_process', true, 'Not yet')"""
    )
    refresh = refresh_spc(built)
    recomputed = _series(refresh.recomputed_series)
    assert recomputed == {
        ("organisation", "internal", "B1", "WAIT"),
        ("sector", "internal", "X2|acute", "WAIT"),
        ("icb", "internal", "X2", "WAIT"),
    }
    after = _tables(built)
    _assert_untouched(before, after, recomputed)
    cut = after["marts.spc_points"].filter(
        (pl.col("series_key") == "B1") & (pl.col("measure_code") == "WAIT")
    )
    assert cut["segment"].max() == 1
    assert set(after["marts.spc_series_changes"]["change_id"]) == {"CHG-9", "CHG-10"}
    _assert_same_as_full_rebuild(built)


def test_series_that_vanish_are_deleted_and_those_they_fed_recomputed(built):
    before = _tables(built)
    # C1 (the only care home, reporting once, in the last month) is withdrawn.
    built.execute("delete from marts.fct_measure_monthly where org_code = 'C1'")
    derive_tables(built)
    refresh = refresh_spc(built)
    removed = _series(refresh.removed_series)
    assert removed == {
        ("organisation", "internal", "C1", "FALLS"),
        ("organisation", "internal", "C1", "REPORTING"),
        ("sector", "internal", "X1|care", "FALLS"),
        ("sector", "internal", "X1|care", "REPORTING"),
        ("sector", "public", "X1|care", "FALLS"),
        ("sector", "public", "X1|care", "REPORTING"),
    }
    after = _tables(built)
    for name, frame in after.items():
        assert _without(frame, removed).height == frame.height, name
    # ICB X1 and the region lose C1's last month in FALLS and REPORTING, both tiers.
    assert {s[0] for s in _series(refresh.recomputed_series)} == {"icb", "region"}
    assert refresh.recomputed == 2 * 2 * 2
    _assert_untouched(before, after, removed | _series(refresh.recomputed_series))
    _assert_same_as_full_rebuild(built)


def test_a_state_that_does_not_match_the_tables_means_a_full_rebuild(built):
    expected = _tables(built)
    # Something else rewrote spc_points (rows lost): the stored fingerprints no longer
    # describe it, so nothing is trusted.
    built.execute("delete from marts.spc_points where level = 'region'")
    refresh = refresh_spc(built)
    assert refresh.full and "state accounts for" in refresh.reason
    for name, frame in _tables(built).items():
        assert_frame_equal(frame, expected[name], check_exact=True)
    # Rewritten whole by another writer with the same rows (the old write path, say): the
    # count agrees, but the table is not the one the state describes.
    write_series_change(built, expected["marts.spc_series_changes"])
    assert refresh_spc(built).reason == (
        "marts.spc_series_changes written by something else since the last refresh"
    )
    # A table of another shape, or missing, likewise.
    built.execute("alter table marts.spc_points drop column assurance_type")
    assert refresh_spc(built).reason == "marts.spc_points is missing or has other columns"
    built.execute("drop table marts.spc_series_changes")
    assert refresh_spc(built).reason == "marts.spc_series_changes is missing or has other columns"
    assert_frame_equal(
        _tables(built)["marts.spc_series_changes"], expected["marts.spc_series_changes"]
    )


def test_a_failed_run_leaves_tables_and_state_as_they_were(built, monkeypatch):
    before = _tables(built)
    built.execute(
        """update marts.fct_measure_monthly set denominator = 2 * denominator,
            value = case when denominator > 0 then numerator * multiplier / (2 * denominator) end"""
    )
    derive_tables(built)
    real = spc_module.spc_for_measure

    def fails_on_wait(facts, measure, **kwargs):
        if measure.code == "WAIT":
            raise RuntimeError("interrupted")
        return real(facts, measure, **kwargs)

    monkeypatch.setattr(spc_module, "spc_for_measure", fails_on_wait)
    with pytest.raises(RuntimeError, match="interrupted"):
        # One read and one insert per measure: FALLS, NEWS2, REPORTING are written first.
        refresh_spc(built, insert_batch_rows=1, read_batch_rows=1)
    for name, frame in _tables(built).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    # The rows computed before the failure were staged, committed, and dropped again.
    assert not _table_exists(built, SpcTables.of().staged)
    monkeypatch.undo()
    # A process killed while staging leaves the staging table behind: the next refresh
    # replaces it, and none of its rows reach the SPC tables.
    built.execute(f"create table {SpcTables.of().staged} as select * from marts.spc_points")
    recomputed = _series(refresh_spc(built).recomputed_series)
    assert not _table_exists(built, SpcTables.of().staged)
    # Every series but the five public WAIT ones: their denominators (1 to 3, doubled) are
    # suppressed before and after, so their public rows did not change.
    unchanged = {
        s for s in _series(before["marts.spc_points"]) if s[1] == "public" and s[3] == "WAIT"
    }
    assert len(unchanged) == 5 and not recomputed & unchanged
    assert len(recomputed) == 58 - 5
    # Read and written a measure at a time, the tables are the same as in one go.
    before = _tables(built)
    assert refresh_spc(built, full=True, insert_batch_rows=1, read_batch_rows=1).full
    for name, frame in _tables(built).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    _assert_same_as_full_rebuild(built)


def test_the_asset_recomputes_nothing_on_a_second_run_with_the_same_data(
    settings: Settings,
    warehouse,  # noqa: F811
):
    settings.working_db.parent.mkdir(parents=True)
    warehouse.execute(f"attach '{settings.working_db}' as working")
    for schema, tables in {
        "marts": (
            "dim_measure",
            "dim_change",
            "fct_measure_monthly",
            "fct_measure_by_sector_monthly",
            "fct_measure_by_icb_monthly",
            "fct_measure_by_programme_monthly",
        ),
        "public": (*PUBLIC_TABLES, "pub_change"),
    }.items():
        warehouse.execute(f"create schema working.{schema}")
        for table in tables:
            warehouse.execute(
                f"create table working.{schema}.{table} as select * from {schema}.{table}"
            )
    warehouse.execute("detach working")

    metadata = []
    for _ in range(2):
        result = dg.materialize(
            [spc_points],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"working_file_run": WorkingFileRun()},
        )
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.passed
        [materialization] = result.asset_materializations_for_node("marts__spc_points")
        metadata.append({k: v.value for k, v in materialization.metadata.items()})
    first, second = metadata
    assert (first["full_rebuild"], first["series_recomputed"]) == (True, 58)
    assert (second["full_rebuild"], second["series_recomputed"], second["rows_recomputed"]) == (
        False,
        0,
        0,
    )
    assert second["dagster/row_count"] == first["dagster/row_count"] > 0


@pytest.mark.parametrize("chunk_rows", [1, 40, 10**9])
def test_a_measure_computed_in_parts_of_whole_series_is_the_measure_computed_whole(
    built, monkeypatch, chunk_rows
):
    """At SCALE=5 a care-home measure has 5.5 million fact rows, and the method's arrays
    over it took the step to 14 GB: a measure is given to the method in parts of whole
    series (``spc_chunk_rows``). Each series' figures come from that series alone, so the
    parts give exactly the measure's rows computed whole (``build_fct_spc``, which never
    splits), and no part holds part of a series."""
    real = spc_module.spc_for_measure
    parts: list[pl.DataFrame] = []

    def recording(facts, measure, **kwargs):
        parts.append(facts.select(KEYS).unique())
        return real(facts, measure, **kwargs)

    monkeypatch.setattr(spc_module, "spc_for_measure", recording)
    assert refresh_spc(built, full=True, spc_chunk_rows=chunk_rows).full
    monkeypatch.undo()
    whole = build_fct_spc(built).sort([*KEYS, "period"])
    stored = built.execute("select * from marts.spc_points").pl().sort([*KEYS, "period"])
    assert_frame_equal(stored, whole, check_exact=True)
    series = [row for part in parts for row in part.iter_rows()]
    assert len(series) == len(set(series)) == 58  # each series in exactly one part
    measures = whole["measure_code"].n_unique()
    if chunk_rows == 1:
        assert len(parts) == 58  # one series a part
    elif chunk_rows == 10**9:
        # A measure a part, but for the last series of each Arrow batch, held back in case
        # it goes on in the next batch and given to the method as a part of its own.
        assert measures <= len(parts) <= 2 * measures
        assert all(part["measure_code"].n_unique() == 1 for part in parts)
    else:
        assert measures < len(parts) < 58


def test_series_chunks_cut_only_between_series():
    """The parts, in order, are the frame; a series is never cut, even one longer than the
    bound; and a frame within the bound is one part."""
    frame = pl.DataFrame(
        [
            {
                "measure_code": "M",
                "level": level,
                "tier": "internal",
                "series_key": f"S{k}",
                "period": p,
            }
            for level in ("icb", "organisation")
            for k in range(1, 8)
            for p in range(k)
        ]
    )
    for rows, sizes in (
        (1, [1, 2, 3, 4, 5, 6, 7] * 2),
        (5, [3, 3, 4, 5, 6, 7] * 2),
        (10, [10, 5, 6, 10, 7, 5, 6, 7]),
        (56, [56]),
    ):
        parts = list(series_chunks(frame, rows))
        assert [p.height for p in parts] == sizes
        assert_frame_equal(pl.concat(parts), frame)
        seen = [row for p in parts for row in p.select(KEYS).unique().iter_rows()]
        assert len(seen) == len(set(seen)) == 14
