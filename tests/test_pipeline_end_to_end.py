"""The whole pipeline through Dagster on the committed sample, as `make demo` runs it."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from conftest import SAMPLES, point_settings_at, run_full_pipeline
from pipelines.catalogue import load_catalogue
from pipelines.publish.snapshot import verify_snapshot
from pipelines.settings import load_settings

# Every test here reads or repeats the full run of the sample: end to end.
pytestmark = pytest.mark.e2e

MARTS = [
    "dim_change",
    "dim_icb",
    "dim_measure",
    "dim_organisation",
    "dim_period",
    "dim_programme",
    "dim_sector",
    "dim_survey_domain",
    "dim_survey_wave",
    "fct_culture_survey",
    "fct_culture_survey_by_icb",
    "fct_culture_survey_by_sector",
    # Incident marts (docs/incidents.md): internal tier only.
    "fct_incident",
    "fct_incident_by_department_monthly",
    "fct_incident_by_geography_monthly",
    "fct_incident_monthly",
    "fct_incident_reporting_lag",
    "fct_measure_by_icb_monthly",
    "fct_measure_by_programme_monthly",
    "fct_measure_by_sector_financial_year",
    "fct_measure_by_sector_monthly",
    "fct_measure_monthly",
    "fct_programme_impact",
    "fct_series_change",
    "fct_spc",
    "mart_incident_extracts",
    "mart_incident_reconciliation",
    "mart_submission_completeness",
    "mart_unexplained_shifts",
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One full run on a copy of the sample; yields (settings, instance)."""
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        shutil.copytree(SAMPLES / "landing", root / "landing")
        instance = dg.DagsterInstance.ephemeral()
        result = run_full_pipeline(instance)
        assert result.success, "first full run failed"
        yield load_settings(), instance


def query(settings, sql: str):
    with duckdb.connect(str(settings.published_current / "warehouse.duckdb"), read_only=True) as c:
        return c.execute(sql).fetchall()


def table_contents(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in MARTS}


def sample_rows(relative: str) -> list[dict]:
    with (SAMPLES / "landing" / relative).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_published_fact_count_matches_the_generator(published):
    settings, _ = published
    expected = json.loads((SAMPLES / "SAMPLE_MANIFEST.json").read_text())
    [(count,)] = query(settings, "select count(*) from fct_measure_monthly")
    assert count == expected["fct_measure_monthly_rows"]
    [(quarantined,)] = (
        duckdb.connect(str(settings.working_db), read_only=True)
        .execute("select count(*) from raw.quarantine")
        .fetchall()
    )
    assert quarantined == expected["rows_quarantined"]
    manifest = json.loads((settings.published_current / "manifest.json").read_text())
    assert manifest["row_counts"]["internal"]["fct_measure_monthly"] == count
    assert sorted(manifest["row_counts"]["internal"]) == MARTS
    assert "dim_organisation" not in manifest["row_counts"]["public"]
    assert {
        "pub_spc",
        "dim_icb",
        "pub_change",
        "pub_series_change",
        "pub_programme_impact",
    } <= set(manifest["row_counts"]["public"])
    assert verify_snapshot(settings.published_current.resolve()) == []
    for name, meta in manifest["files"].items():
        assert (settings.published_current / name).stat().st_size == meta["bytes"]
    blocking = [c for c in manifest["checks"] if c["severity"] == "ERROR"]
    assert blocking and all(c["passed"] for c in blocking)
    # The completeness warning names the providers the sample leaves out on purpose.
    [overdue] = [c for c in manifest["checks"] if c["check"] == "returns_not_overdue"]
    assert overdue == {**overdue, "passed": False, "severity": "WARN"}
    assert (settings.published_current / "parquet" / "fct_measure_monthly.parquet").exists()


@pytest.mark.parametrize(
    ("received", "org", "measure"),
    [
        ("2024-02/RTF_2024-01.csv", "RTF", "FALLS_HARM"),
        ("2024-04/QHM_2024-03_gp_practices.csv", "A81001", "OPIOID_HIGH_DOSE"),
        ("2024-04/QHM_2024-03_care_homes.csv", "VNE03", "PU_CAT2PLUS"),
        # The resubmitted file wins over the original for every measure it carries.
        ("2024-09/RTD_2024-06_resubmitted.csv", "RTD", "FALLS_HARM"),
    ],
)
def test_published_rates_match_the_sample_files(published, received, org, measure):
    settings, _ = published
    rows = sample_rows(received)
    [row] = [r for r in rows if r["org_code"] == org and r["measure_code"] == measure]
    multiplier = load_catalogue()[measure].multiplier
    expected = int(row["numerator"]) * multiplier / int(row["denominator"])
    [(numerator, denominator, value)] = query(
        settings,
        f"select numerator, denominator, value from fct_measure_monthly where org_code = '{org}'"
        f" and measure_code = '{measure}' and period = '{row['period']}-01'",
    )
    assert (numerator, denominator) == (int(row["numerator"]), int(row["denominator"]))
    assert value == pytest.approx(expected, rel=1e-12)


def test_regional_rollup_sums_counts_then_divides(published):
    settings, _ = published
    rows = [
        r
        for f in (SAMPLES / "landing" / "2023-05").glob("*.csv")
        for r in sample_rows(f"2023-05/{f.name}")
        if r["measure_code"] == "FALLS_HARM"
    ]
    numerator = sum(int(r["numerator"]) for r in rows)
    denominator = sum(int(r["denominator"]) for r in rows)
    [(n, d, value, orgs)] = query(
        settings,
        "select numerator, denominator, value, organisations_reporting"
        " from fct_measure_by_programme_monthly"
        " where measure_code = 'FALLS_HARM' and period = '2023-04-01'",
    )
    assert (n, d, orgs) == (numerator, denominator, len(rows))
    assert value == pytest.approx(numerator * 1000 / denominator)


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    count = con.execute("select count(*) from fct_measure_monthly").fetchone()[0]
    print(count, flush=True)
    sys.stdin.readline()              # hold the file open until the test says so
    print(con.execute("select count(*) from fct_measure_monthly").fetchone()[0], flush=True)
    """
)


def test_a_reader_holding_the_published_file_never_blocks_a_run_and_reruns_change_nothing(
    published,
):
    settings, instance = published
    before_dir = settings.published_current.resolve()
    before = table_contents(before_dir / "warehouse.duckdb")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.published_current / "warehouse.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_count = int(reader.stdout.readline())
        result = run_full_pipeline(instance)
        assert result.success
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == first_count
        assert reader.wait(timeout=30) == 0
    finally:
        reader.kill()
    after_dir = settings.published_current.resolve()
    assert after_dir != before_dir, "a new snapshot was published beside the old one"
    assert table_contents(after_dir / "warehouse.duckdb") == before


def test_publishing_alone_refuses_an_unaudited_build(published):
    settings, instance = published
    current = settings.published_current.resolve()
    from pipelines.definitions import defs

    job = defs().resolve_job_def("full_pipeline")
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("published_snapshot")], raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "was not built in this run" in json.dumps(failure.metadata["problems"].value)
    assert settings.published_current.resolve() == current


def test_register_resolves_sectors_overrides_and_mergers(published):
    settings, _ = published
    rows = dict(
        (code, (sector, reporting))
        for code, sector, reporting in query(
            settings,
            "select org_code, sector_code, reporting_org_code from dim_organisation"
            " where org_code in ('RLN', 'RE9', 'R0B', 'RX3', 'RX6', 'A81001', 'VNE01', 'QHM')",
        )
    )
    assert rows == {
        "RLN": ("acute_trust", "R0B"),  # merged into South Tyneside and Sunderland in 2019
        "RE9": ("acute_trust", "R0B"),
        "R0B": ("acute_trust", "R0B"),
        "RX3": ("mental_health_trust", "RX3"),  # local register overrides ODS
        "RX6": ("ambulance_trust", "RX6"),
        "A81001": ("gp_practice", "A81001"),
        "VNE01": ("care_home", "VNE01"),
        "QHM": ("icb", "QHM"),
    }
    [(practices,)] = query(
        settings, "select count(*) from dim_organisation where sector_code = 'gp_practice'"
    )
    assert practices == 384  # prescribing setting 4 among the region's 671 epraccur rows
