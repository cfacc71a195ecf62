"""The GX audit of the marts (pipelines/quality/gx_audit.py, suites in expectations/gx).

The pipeline runs once on the committed sample; each bad-input case then tampers a copy of
that working file the way a real defect would show up (a numerator above its denominator,
a duplicated key, a lost month, a stale roll-up, ...) and asserts that the audit fails
and names the expectation and table. Bad cases come with good counterparts (a rate may
exceed its denominator and 100 where a percentage may not; the column, roll-up or rule
next to the broken one stays green), so a rule that fired on everything would fail too.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import SampleBuild
from pipelines.quality import gx_audit
from pipelines.quality.gx_audit import AuditConfigurationError, AuditResult, run_expectations

SUITES = sorted(gx_audit.BATCHES)
ROLLUPS = [s for s in SUITES if s.startswith("fct_measure_by_")]
FACT = "fct_measure_monthly"
MONTH = "2024-06-01"  # inside the sample (2023-04 .. 2025-03), neither first nor last
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
BETWEEN = "expect_column_values_to_be_between"


@pytest.fixture(scope="module")
def working_db(sample_build: SampleBuild) -> Path:
    """The working file after the session's full pipeline run on the sample (read only:
    the tampering tests change copies of it).

    Only the marts this audit reads must have been built: whether publication then goes
    ahead also depends on checks outside them (the disclosure scan of the public tier),
    which tests/test_pipeline_end_to_end.py covers.
    """
    with duckdb.connect(str(sample_build.working_db), read_only=True) as con:
        built = {
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }
    missing = [s for s in SUITES if s not in built]
    assert not missing, f"the full pipeline run did not build {missing}"
    return sample_build.working_db


@pytest.fixture(scope="module")
def sample_audit(working_db: Path, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    return run_expectations(working_db, tmp_path_factory.mktemp("docs") / "data_docs")


def tampered(working_db: Path, target: Path, *statements: str) -> Path:
    """A copy of the working file with ``statements`` applied."""
    target.mkdir(parents=True, exist_ok=True)
    copy = target / "working.duckdb"
    shutil.copy(working_db, copy)
    with duckdb.connect(str(copy)) as con:
        for statement in statements:
            con.execute(statement)
    return copy


def outcomes(
    result: AuditResult, table: str, expectation_type: str, column: str | None = None
) -> list[dict[str, Any]]:
    found = [
        r
        for r in result.results
        if r["table"] == table
        and r["expectation_type"] == expectation_type
        and (column is None or r["column"] == column)
    ]
    assert found, f"no {expectation_type} on {table}.{column} in the results"
    return found


def outcome(
    result: AuditResult,
    table: str,
    expectation_type: str,
    column: str | None = None,
    row_condition: str | None = None,
) -> dict[str, Any]:
    [found] = [
        r
        for r in outcomes(result, table, expectation_type, column)
        if row_condition is None or r["row_condition"] == row_condition
    ]
    return found


def fact_row(org: str, measure: str, month: str = MONTH) -> str:
    return f"org_code = '{org}' and measure_code = '{measure}' and period = '{month}'"


# --- the real sample ---------------------------------------------------------------------


def test_every_suite_passes_on_the_sample_build(sample_audit: AuditResult, working_db: Path):
    assert sample_audit.failures == []
    assert sample_audit.passed
    assert sorted({r["suite"] for r in sample_audit.results}) == SUITES
    committed = {
        path.stem: len(json.loads(path.read_text())["expectations"])
        for path in (gx_audit.GX_DIR / "expectations").glob("*.json")
    }
    ran = {s: sum(r["suite"] == s for r in sample_audit.results) for s in SUITES}
    assert ran == committed, "every committed expectation ran once"
    json.dumps(sample_audit.results)  # goes into the publication manifest as is

    with duckdb.connect(str(working_db), read_only=True) as con:
        [(facts,)] = con.execute(f"select count(*) from marts.{FACT}").fetchall()
    assert sample_audit.rows_validated[FACT] == facts > 10_000
    row_count = outcome(sample_audit, FACT, "expect_table_row_count_to_equal")
    assert row_count["observed_value"] == row_count["expected"]["value"] == facts
    months = outcome(sample_audit, FACT, "expect_column_distinct_values_to_contain_set")
    assert months["expected"]["value_set"][0] == "2023-04"
    assert months["expected"]["value_set"][-1] == "2025-03"
    assert len(months["expected"]["value_set"]) == 24


def test_data_docs_are_a_static_site_with_a_page_per_suite(sample_audit: AuditResult):
    index = sample_audit.data_docs_index
    assert index is not None and index.is_file()
    site = index.parent
    assert sorted(p.stem for p in (site / "expectations").glob("*.html")) == SUITES
    pages = {p.parent.parent.parent.name: p for p in (site / "validations").rglob("*.html")}
    assert sorted(pages) == SUITES
    assert "Unsuccessful Expectations 0" in page_text(pages[FACT])


def test_the_audit_writes_nothing_to_the_working_file_or_the_repo(working_db: Path, tmp_path):
    before_repo = sorted(p for p in gx_audit.GX_DIR.parent.rglob("*"))
    before_db = hashlib.sha256(working_db.read_bytes()).hexdigest()
    wal = working_db.with_name(working_db.name + ".wal")
    run_expectations(working_db, tmp_path / "docs")
    assert hashlib.sha256(working_db.read_bytes()).hexdigest() == before_db
    assert not wal.exists()
    assert sorted(p for p in gx_audit.GX_DIR.parent.rglob("*")) == before_repo
    assert not (gx_audit.GX_DIR / "uncommitted").exists()


# --- bad input beside good input -----------------------------------------------------------


def test_a_proportion_numerator_above_its_denominator_fails_but_a_rate_may(working_db, tmp_path):
    proportion = fact_row("RTD", "NEWS2_ON_TIME")
    rate = fact_row("RTD", "FALLS_HARM")
    bad = run_expectations(
        tampered(
            working_db,
            tmp_path / "bad",
            f"update marts.{FACT} set numerator = denominator + 1 where {proportion}",
        )
    )
    good = run_expectations(
        tampered(
            working_db,
            tmp_path / "good",
            f"update marts.{FACT} set numerator = denominator + 1,"
            f" value = (denominator + 1) * 1000.0 / denominator where {rate}",
        )
    )
    assert not bad.passed
    failed = outcome(bad, FACT, PAIR, "denominator, numerator", "is_proportion == True")
    assert not failed["success"]
    assert failed["unexpected_count"] == 1
    with duckdb.connect(str(working_db), read_only=True) as con:
        [(denominator,)] = con.execute(
            f"select denominator from marts.{FACT} where {proportion}"
        ).fetchall()
    # [denominator, numerator] of the tampered row, as the sample has it.
    assert failed["partial_unexpected_list"] == [[denominator, denominator + 1]]
    assert outcome(good, FACT, PAIR, "denominator, numerator")["success"]
    for condition in ("is_proportion == True", "is_proportion == False"):
        assert outcome(good, FACT, BETWEEN, "value", condition)["success"]


def test_a_percentage_above_100_fails_but_a_rate_above_100_passes(working_db, tmp_path):
    bad = run_expectations(
        tampered(
            working_db,
            tmp_path / "bad",
            f"update marts.{FACT} set value = 100.5 where {fact_row('RTD', 'NEWS2_ON_TIME')}",
        )
    )
    good = run_expectations(
        tampered(
            working_db,
            tmp_path / "good",
            f"update marts.{FACT} set value = 150 where {fact_row('RTD', 'INCIDENT_REPORTING')}",
        )
    )
    failed = outcome(bad, FACT, BETWEEN, "value", "is_proportion == True")
    assert not bad.passed and not failed["success"]
    assert failed["partial_unexpected_list"] == [100.5]
    assert outcome(good, FACT, BETWEEN, "value", "is_proportion == True")["success"]
    assert outcome(good, FACT, BETWEEN, "value", "is_proportion == False")["success"]
    assert good.passed, "a rate has no ceiling; nothing else changed"


def test_a_negative_count_fails(working_db, tmp_path):
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"update marts.{FACT} set numerator = -1, value = null"
            f" where {fact_row('RTD', 'FALLS_HARM')}",
        )
    )
    assert not result.passed
    assert not outcome(result, FACT, BETWEEN, "numerator")["success"]
    assert outcome(result, FACT, BETWEEN, "denominator")["success"]


def test_a_duplicated_key_fails_uniqueness_and_the_raw_reconciliation(working_db, tmp_path):
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"insert into marts.{FACT} select * from marts.{FACT}"
            f" where {fact_row('RTD', 'FALLS_HARM')}",
        )
    )
    unique = outcome(result, FACT, "expect_compound_columns_to_be_unique")
    assert unique["column"] == "org_code, measure_code, period"
    assert not unique["success"] and unique["unexpected_count"] == 2
    rows = outcome(result, FACT, "expect_table_row_count_to_equal")
    assert not rows["success"]
    assert rows["observed_value"] == rows["expected"]["value"] + 1
    assert not result.passed


def test_a_lost_fact_row_fails_the_reconciliation_with_raw(working_db, tmp_path):
    result = run_expectations(
        tampered(
            working_db, tmp_path, f"delete from marts.{FACT} where {fact_row('RTD', 'MAG_SULPH')}"
        )
    )
    rows = outcome(result, FACT, "expect_table_row_count_to_equal")
    assert not rows["success"]
    assert rows["observed_value"] == rows["expected"]["value"] - 1
    # The roll-ups were built from the complete fact, so they now count one row too many.
    for rollup in ROLLUPS:
        reporting = outcome(
            result, rollup, "expect_column_sum_to_be_between", "organisations_reporting"
        )
        assert not reporting["success"]
        assert reporting["observed_value"] == reporting["expected"]["min_value"] + 1
    assert not result.passed


def test_a_month_missing_everywhere_fails_the_period_coverage(working_db, tmp_path):
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            *(f"delete from marts.{t} where period = '{MONTH}'" for t in [FACT, *ROLLUPS]),
        )
    )
    coverage = outcome(result, FACT, "expect_column_distinct_values_to_contain_set", "period_month")
    assert not coverage["success"]
    assert coverage["missing_values"] == ["2024-06"]
    assert not outcome(result, FACT, "expect_table_row_count_to_equal")["success"]
    # The roll-ups lost the same month, so they still agree with the fact.
    assert all(r["success"] for r in result.results if r["table"] in ROLLUPS)
    assert not result.passed


def test_the_first_month_missing_is_not_a_gap(working_db, tmp_path):
    """Coverage runs from the fact's first month to its last, so losing the first month is
    not reported as a gap; the reconciliation with raw still catches the lost rows."""
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            *(f"delete from marts.{t} where period = '2023-04-01'" for t in [FACT, *ROLLUPS]),
        )
    )
    coverage = outcome(result, FACT, "expect_column_distinct_values_to_contain_set", "period_month")
    assert coverage["success"]
    assert coverage["expected"]["value_set"][0] == "2023-05"
    assert not outcome(result, FACT, "expect_table_row_count_to_equal")["success"]


def test_a_stale_rollup_fails_its_own_cross_checks_only(working_db, tmp_path):
    table = "fct_measure_by_icb_monthly"
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"delete from marts.{table} where measure_code = 'FALLS_HARM' and period = '{MONTH}'",
        )
    )
    assert not outcome(result, table, "expect_table_row_count_to_equal")["success"]
    assert not outcome(result, table, "expect_column_sum_to_be_between", "numerator")["success"]
    assert {r["table"] for r in result.failures} == {table}


def test_a_null_rollup_key_fails_completeness(working_db, tmp_path):
    table = "fct_measure_by_icb_monthly"
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"update marts.{table} set icb_code = null"
            f" where measure_code = 'FALLS_HARM' and period = '{MONTH}'",
        )
    )
    failed = outcome(result, table, "expect_column_values_to_not_be_null", "icb_code")
    assert not failed["success"] and failed["unexpected_count"] == 1
    assert outcome(result, table, "expect_column_values_to_not_be_null", "measure_code")["success"]


def test_a_measure_missing_from_the_catalogue_fails(working_db, tmp_path):
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"update marts.{FACT} set measure_code = 'NOT_A_MEASURE'"
            f" where {fact_row('RTD', 'FALLS_HARM')}",
        )
    )
    failed = outcome(result, FACT, "expect_column_values_to_not_be_null", "is_proportion")
    assert not failed["success"] and failed["unexpected_count"] == 1


def test_organisations_must_be_unique_and_in_a_known_sector(working_db, tmp_path):
    table = "dim_organisation"
    result = run_expectations(
        tampered(
            working_db,
            tmp_path,
            f"update marts.{table} set sector_code = 'spaceport' where org_code = 'RTD'",
            f"insert into marts.{table} select * from marts.{table} where org_code = 'RX3'",
        )
    )
    sector = outcome(result, table, "expect_column_values_to_be_in_set", "sector_code")
    assert not sector["success"] and sector["partial_unexpected_list"] == ["spaceport"]
    assert "acute_trust" in sector["expected"]["value_set"]
    unique = outcome(result, table, "expect_column_values_to_be_unique", "org_code")
    assert not unique["success"] and unique["partial_unexpected_list"] == ["RX3", "RX3"]
    assert outcome(result, table, "expect_column_values_to_not_be_null", "sector_code")["success"]


def test_a_missing_column_fails_the_expectations_that_need_it(working_db, tmp_path):
    table = "fct_measure_by_programme_monthly"
    result = run_expectations(
        tampered(
            working_db, tmp_path, f"alter table marts.{table} drop column organisations_reporting"
        )
    )
    failed = outcomes(result, table, BETWEEN, "organisations_reporting")
    assert [r["success"] for r in failed] == [False]
    assert "organisations_reporting" in failed[0]["exception"]
    assert not result.passed


# --- period filtering ----------------------------------------------------------------------


def test_periods_validate_only_the_requested_months(working_db, tmp_path):
    broken = tampered(
        working_db,
        tmp_path,
        f"update marts.{FACT} set numerator = denominator + 1"
        f" where {fact_row('RTD', 'NEWS2_ON_TIME')}",
        *(f"delete from marts.{t} where period = '2024-03-01'" for t in [FACT, *ROLLUPS]),
    )
    after = run_expectations(broken, periods=(date(2024, 7, 1), date(2024, 9, 1)))
    with duckdb.connect(str(broken), read_only=True) as con:
        [(in_window,)] = con.execute(
            f"select count(*) from marts.{FACT} where period between '2024-07-01' and '2024-09-01'"
        ).fetchall()
    assert after.passed, after.failures
    assert after.periods == (date(2024, 7, 1), date(2024, 9, 1))
    assert after.rows_validated[FACT] == in_window > 0
    assert after.rows_validated["dim_organisation"] > 0  # not period-grained: always whole
    coverage = outcome(after, FACT, "expect_column_distinct_values_to_contain_set")
    assert coverage["expected"]["value_set"] == ["2024-07", "2024-08", "2024-09"]

    # Any day names its month: (15 June, 1 June) is June alone.
    june = run_expectations(broken, periods=(date(2024, 6, 15), date(2024, 6, 1)))
    assert not june.passed
    assert not outcome(june, FACT, PAIR)["success"]

    march = run_expectations(broken, periods=(date(2024, 2, 1), date(2024, 4, 30)))
    coverage = outcome(march, FACT, "expect_column_distinct_values_to_contain_set")
    assert coverage["missing_values"] == ["2024-03"]
    assert outcome(march, FACT, PAIR)["success"]


def test_months_without_data_validate_nothing_and_pass(working_db):
    result = run_expectations(working_db, periods=(date(2031, 1, 1), date(2031, 3, 1)))
    assert result.passed, result.failures
    assert result.rows_validated[FACT] == 0
    coverage = outcome(result, FACT, "expect_column_distinct_values_to_contain_set")
    assert coverage["expected"]["value_set"] == []


# --- months validated in ranges (bounded memory at national scale) --------------------------


def _fact_rows(working_db: Path, where: str = "true") -> int:
    with duckdb.connect(str(working_db), read_only=True) as con:
        [(rows,)] = con.execute(f"select count(*) from marts.{FACT} where {where}").fetchall()
    return rows


def test_months_validated_in_ranges_give_the_results_of_one_validation(sample_audit, working_db):
    chunked = run_expectations(working_db, chunk_rows=_fact_rows(working_db) // 5)
    assert chunked.results == sample_audit.results
    assert chunked.rows_validated == sample_audit.rows_validated
    window = (date(2023, 9, 1), date(2024, 8, 1))
    whole = run_expectations(working_db, periods=window)
    assert run_expectations(working_db, periods=window, chunk_rows=1).results == whole.results


def test_failures_in_different_ranges_add_up(working_db, tmp_path):
    early, late = (
        fact_row("RTD", "NEWS2_ON_TIME", "2023-06-01"),
        fact_row("RTD", "NEWS2_ON_TIME", "2024-12-01"),
    )
    broken = tampered(
        working_db,
        tmp_path,
        *(f"update marts.{FACT} set numerator = denominator + 1 where {w}" for w in (early, late)),
        *(f"delete from marts.{t} where period = '{MONTH}'" for t in [FACT, *ROLLUPS]),
    )
    whole = run_expectations(broken)
    chunked = run_expectations(broken, chunk_rows=_fact_rows(broken) // 4)
    for result in (whole, chunked):
        assert not result.passed
        pair = outcome(result, FACT, PAIR, "denominator, numerator", "is_proportion == True")
        assert not pair["success"] and pair["unexpected_count"] == 2
        coverage = outcome(result, FACT, "expect_column_distinct_values_to_contain_set")
        assert not coverage["success"] and coverage["missing_values"] == ["2024-06"]
        count = outcome(result, FACT, "expect_table_row_count_to_equal")
        assert not count["success"] and count["observed_value"] == _fact_rows(broken)
    assert chunked.results == whole.results


# --- configuration -------------------------------------------------------------------------


def test_periods_out_of_order_are_refused(working_db):
    with pytest.raises(ValueError, match="first <= last"):
        run_expectations(working_db, periods=(date(2024, 9, 1), date(2024, 7, 1)))


@pytest.mark.parametrize(("severity", "passes"), [("warning", True), ("critical", False)])
def test_only_critical_expectations_block(working_db, tmp_path, monkeypatch, severity, passes):
    context = tmp_path / "gx"
    shutil.copytree(gx_audit.GX_DIR, context)
    suite_file = context / "expectations" / "dim_organisation.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "sector_code", "value_set": ["acute_trust"]},
            "severity": severity,
        }
    )
    suite_file.write_text(json.dumps(suite))
    monkeypatch.setattr(gx_audit, "GX_DIR", context)
    result = run_expectations(working_db)
    [failure] = result.failures
    assert (failure["table"], failure["severity"]) == ("dim_organisation", severity)
    assert failure["expected"] == {"value_set": ["acute_trust"]}
    assert result.passed is passes


def test_a_suite_missing_from_the_committed_context_is_an_error(working_db, tmp_path, monkeypatch):
    context = tmp_path / "gx"
    shutil.copytree(gx_audit.GX_DIR, context)
    (context / "expectations" / "dim_organisation.json").unlink()
    monkeypatch.setattr(gx_audit, "GX_DIR", context)
    with pytest.raises(AuditConfigurationError, match="dim_organisation"):
        run_expectations(working_db)


def page_text(path: Path) -> str:
    """The visible text of a Data Docs page without running its scripts."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))
