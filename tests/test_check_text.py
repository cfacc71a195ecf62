"""Checks a person can read in the Dagster UI: every check of the built definitions has a
description saying what it protects and what to do when it fails (the dbt tests' written
from their own definitions), and check metadata is plain values: ISO dates, numbers, and
failing rows as a small markdown table, never a Python repr."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import duckdb

from pipelines.defs.check_text import describe_test, markdown_table, plain, with_failing_rows
from pipelines.defs.quality import gx_metadata
from pipelines.settings import load_settings


def _manifest() -> dict:
    return json.loads((load_settings().dbt_target_dir / "manifest.json").read_text())


def test_every_check_of_the_built_definitions_says_what_to_do_when_it_fails():
    from pipelines.definitions import defs

    graph = defs().resolve_asset_graph()
    specs = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    manifest = _manifest()
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    dbt_specs = [s for s in specs if s.name in {t["name"] for t in tests}]
    # Every dbt test is a check (none lost), and every check of either kind is described.
    assert len(dbt_specs) == len(tests) > 200
    undescribed = [s.name for s in specs if not (s.description or "").strip()]
    assert undescribed == []
    for spec in dbt_specs:
        assert "If it fails" in spec.description, spec.name
        assert spec.asset_key.path[-1] in spec.description, spec.name
    by_name = {s.name: s.description for s in dbt_specs}
    assert (
        "marts.dim_measure.spc_chart takes only the values xmr, p, u, p_prime, u_prime"
        in (by_name["accepted_values_dim_measure_spc_chart__xmr__p__u__p_prime__u_prime"])
    )
    grain = by_name["unique_combination_fct_spc_level__series_key__measure_code__period"]
    assert grain.startswith("marts.fct_spc has one row per (level, series_key, measure_code")
    assert "Blocking" in grain
    singular = by_name["organisations_in_region"]
    assert "tests/organisations_in_region.sql" in singular
    assert "Affects: dim_organisation, mart_submission_completeness." in singular


def test_a_description_written_on_the_test_wins_and_warnings_say_so():
    manifest = _manifest()
    test = {
        "name": "x",
        "description": "Falls never exceed bed days.",
        "config": {"severity": "warn", "meta": {"affects": ["fct_measure_monthly"]}},
        "test_metadata": {"name": "not_null", "kwargs": {"column_name": "value"}},
    }
    assert describe_test(manifest, test) == (
        "Falls never exceed bed days. A warning: the run goes on. Affects: fct_measure_monthly."
    )
    # An unknown kind still says where to look, not nothing.
    test = {"name": "y", "config": {}, "test_metadata": {"name": "my_rule", "kwargs": {}}}
    assert "If it fails" in describe_test(manifest, test)


def test_a_failed_check_shows_its_first_failing_rows_as_a_table(tmp_path):
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(
            "create table facts as select 'R0' || i as org_code, date '2024-04-01' as period,"
            " case when i % 2 = 0 then null else i end as value from range(20) t(i)"
        )
    compiled = {"test.p.not_null_value": "select * from facts where value is null;"}
    failed = dg.AssetCheckResult(
        passed=False,
        asset_key=dg.AssetKey(["marts", "facts"]),
        check_name="not_null_value",
        metadata={"unique_id": "test.p.not_null_value", "dagster_dbt/failed_row_count": 10},
    )
    shown = with_failing_rows(failed, compiled, database)
    table = shown.metadata["failing_rows"].value
    lines = table.splitlines()
    assert lines[0] == "| org_code | period | value |"
    assert len(lines) == 2 + 5  # header, rule, the first five rows only
    assert "| R00 | 2024-04-01 |  |" in lines
    assert shown.metadata["dagster_dbt/failed_row_count"].value == 10
    # Bad input beside good: a passed check, a test without compiled SQL, and SQL that no
    # longer runs are left as they were.
    passed = dg.AssetCheckResult(passed=True, asset_key="a", check_name="c")
    assert with_failing_rows(passed, compiled, database) is passed
    assert with_failing_rows(failed, {}, database) is failed
    broken = {"test.p.not_null_value": "select * from no_such_table"}
    assert with_failing_rows(failed, broken, database) is failed


def test_gx_metadata_is_plain_values():
    failures = [
        {"table": "fct_measure_monthly", "expectation_type": "expect_x", "column": "value"},
        {"table": "dim_measure", "expectation_type": "expect|y", "notes": "why\nit matters"},
    ]
    metadata = gx_metadata([{}] * 7, failures, (date(2023, 4, 1), date(2024, 3, 1)))
    assert metadata["months"].value == "2023-04-01..2024-03-01"
    assert (metadata["expectations"].value, metadata["failed"].value) == (7, 2)
    table = metadata["failures"].value
    assert "| dim_measure | expect\\|y |  | why it matters |" in table.splitlines()
    assert "datetime" not in repr(metadata)
    assert gx_metadata([], [], None)["months"].value == "all"


def test_plain_and_markdown_helpers():
    assert plain((date(2023, 4, 1), [date(2024, 1, 1)])) == ["2023-04-01", ["2024-01-01"]]
    assert plain({"n": 3}) == {"n": 3}
    assert markdown_table(["a"], [[None], [1.5]]).splitlines() == [
        "| a |",
        "|---|",
        "|  |",
        "| 1.5 |",
    ]
