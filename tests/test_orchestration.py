"""Event-driven runs: the landing sensor, partitioned backfills, the nightly schedule, the
completeness mart, and two runs at once on one working file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime

import dagster as dg
import duckdb
import pytest
from support.holder import holding_the_working_file

from conftest import SAMPLES, run_full_pipeline
from pipelines.defs.automation import BUSY, landing_sensor, nightly_refresh
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.surveys.ingest import ingest_surveys
from pipelines.warehouse import working_connection

HEADER = "org_code,period,measure_code,numerator,denominator\n"


def evaluate(cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral())
    result = landing_sensor.evaluate_tick(context)
    return result.run_requests, result.skip_message, result.cursor


def ingest_now(settings) -> None:
    """What the requested run's ingest step does to the working file (without the rest)."""
    with working_connection(settings.working_db) as con:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
        ingest_landing(con, settings)


def test_sensor_requests_the_months_in_new_files_and_keys_on_content(settings, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", "")  # measure returns only
    landing = settings.landing_dir
    (landing / "RTD_2024-03.csv").write_text(HEADER + "RTD,2024-03,FALLS_HARM,7,41000\n")
    (landing / "QHM_2024-01_gp.csv").write_text(
        HEADER + "A81001,Jan-24,OPIOID_HIGH_DOSE,12,300\nA81002,2024-02,OPIOID_HIGH_DOSE,3,90\n"
    )
    [request], _, cursor = evaluate()
    assert request.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-01"
    first_key = request.run_key

    requests, skip, cursor = evaluate(cursor)  # nothing new since the request
    assert requests == [] and "no new" in skip

    ingest_now(settings)  # the run: the working file now knows both files
    requests, skip, _ = evaluate(None)  # known from the working file, not the cursor
    assert requests == [] and "no new" in skip

    shutil.copy(landing / "RTD_2024-03.csv", landing / "RTD_2024-03_copy.csv")
    requests, skip, cursor = evaluate(cursor)  # identical re-drop under another name
    assert requests == []

    (landing / "RTD_2024-03.csv").write_text(HEADER + "RTD,2024-05,FALLS_HARM,8,41000\n")
    [corrected], _, cursor = evaluate(cursor)  # corrected file under the old name
    assert corrected.tags["dagster/asset_partition_range_start"] == "2024-05-01"
    assert corrected.tags["dagster/asset_partition_range_end"] == "2024-05-01"
    assert corrected.run_key != first_key

    # The cursor is a small marker (the run key requested), plain JSON as the daemon stores
    # it in DAGSTER_HOME and hands back after a restart: with it nothing is asked twice.
    assert len(cursor) < 200
    assert evaluate(json.dumps(json.loads(cursor)))[0] == []


def test_sensor_still_requests_a_run_for_an_unreadable_file(settings):
    (settings.landing_dir / "RTD_broken.csv").write_bytes(b"\x00\x01")
    [request], _, _ = evaluate()
    assert request.tags["dagster/asset_partition_range_start"] <= date.today().isoformat()


def test_nightly_schedule_refreshes_the_open_window():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 2, 3, 2, 30))
    [request] = nightly_refresh.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2024-11-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-02-01"


def published_facts(settings) -> list[tuple]:
    path = settings.published_current / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select * from fct_measure_monthly order by all").fetchall()


def published_completeness(settings) -> list[tuple]:
    """Completeness without the received timestamps (a corrected return's arrival moves
    them): which returns are expected, received, late or missing."""
    path = settings.published_current / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select org_code, measure_code, period, status from mart_submission_completeness"
            " order by all"
        ).fetchall()


@pytest.mark.e2e
def test_backfill_of_three_months_rebuilds_only_them_and_is_idempotent(settings, sample_landing):
    assert run_full_pipeline().success
    before = published_facts(settings)
    completeness = published_completeness(settings)
    # Archived: landing now holds nothing, the archive everything.
    assert not [p for p in sample_landing.rglob("*") if p.is_file()]
    assert [p for p in settings.archive_dir.rglob("*.csv")]

    (sample_landing / "RTD_2024-05_correction.csv").write_text(
        HEADER + "RTD,2024-05,FALLS_HARM,99,41000\n"
    )
    instance = dg.DagsterInstance.ephemeral()
    result = run_full_pipeline(instance, months=(date(2024, 4, 1), date(2024, 6, 1)))
    assert result.success
    fct_key = next(k for k in instance.get_asset_keys() if k.path[-1] == "fct_measure_monthly")
    built = instance.get_materialized_partitions(fct_key)
    assert built == {"2024-04-01", "2024-05-01", "2024-06-01"}

    after = published_facts(settings)
    changed = [row for row in after if row not in before]
    assert [(r[0], r[1], str(r[2]), r[7]) for r in changed] == [
        ("RTD", "FALLS_HARM", "2024-05-01", 99)
    ]
    assert len(after) == len(before)
    # Incremental on the run's months: the months outside them are carried, not lost.
    assert published_completeness(settings) == completeness

    again = run_full_pipeline(instance, months=(date(2024, 4, 1), date(2024, 6, 1)))
    assert again.success
    assert published_facts(settings) == after


@pytest.mark.e2e
def test_completeness_names_exactly_the_missing_returns(settings, sample_landing):
    assert run_full_pipeline().success
    path = settings.published_current / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        missing = con.execute(
            "select org_code, strftime(period, '%Y-%m'), count(*) from mart_submission_completeness"
            " where status = 'missing' group by all order by all"
        ).fetchall()
    expected = json.loads((SAMPLES / "SAMPLE_MANIFEST.json").read_text())["missing_returns"]
    # Whole returns the generator left out, care home VNE07's three months, and the one row
    # of RTF's January return that was quarantined (numerator > denominator).
    assert {f"{o} {p}" for o, p, _ in missing if o in ("RVW", "NNE03")} == set(expected)
    assert ("VNE07", "2024-05", 3) in missing
    assert ("RTF", "2024-01", 1) in missing
    assert len(missing) == 1 + 3 + 2 + 1  # (org, month) pairs: RVW, VNE07 x3, NNE03 x2, RTF


RUNNER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from conftest import run_full_pipeline
    sys.exit(0 if run_full_pipeline().success else 1)
    """
)


@pytest.mark.e2e
def test_two_runs_at_once_on_the_same_working_file_both_succeed(settings, sample_landing, tmp_path):
    env = {**os.environ, "SAFETY_OBS_ARCHIVE_PROCESSED": "false"}
    tests_dir = os.path.dirname(__file__)
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, tests_dir],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),  # a file, not a pipe: a full pipe would stall the run
        )
        for log in logs
    ]
    codes = [run.wait(timeout=900) for run in runs]
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    expected = json.loads((SAMPLES / "SAMPLE_MANIFEST.json").read_text())
    assert len(published_facts(load_settings())) == expected["fct_measure_monthly_rows"]


def test_sensor_also_watches_survey_exports(settings, tmp_path, monkeypatch):
    surveys = tmp_path / "surveys"
    (surveys / "2025-spring").mkdir(parents=True)
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", str(surveys))
    (surveys / "2025-spring" / "RTD_forms.csv").write_text("ID,Start time\n1,2025-03-01\n")
    [request], _, cursor = evaluate()
    assert request.tags["dagster/asset_partition_range_start"] <= date.today().isoformat()
    assert evaluate(cursor)[0] == []
    # Once ingest has judged it (here: refused, the folder has no wave.yml), the working file
    # knows it; a wave contract added beside it is not an export and starts nothing.
    with working_connection(settings.working_db) as con:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
        [outcome] = ingest_surveys(con, load_settings(), landing_dir=surveys)
    assert outcome.reason.startswith("no_wave_contract")
    (surveys / "2025-spring" / "wave.yml").write_text("id: 2025-spring\n")
    assert evaluate(None)[0] == []


@pytest.mark.e2e
def test_after_a_run_the_sensor_knows_every_file_and_keeps_a_small_cursor(
    settings, sample_landing, monkeypatch
):
    """`make demo` then `make ui`: the files the run loaded, read in place as the demo reads
    the sample folder (returns and survey exports), start nothing; a new file still does."""
    monkeypatch.setenv("SAFETY_OBS_ARCHIVE_PROCESSED", "false")
    assert run_full_pipeline().success
    assert len([p for p in sample_landing.rglob("*.csv")]) > 300  # still in landing

    requests, skip, cursor = evaluate(None)
    assert requests == [] and "no new" in skip
    assert len(cursor or "") < 1024

    # A sensor that ran before this change left every file's digest in its cursor: the
    # first tick replaces it with the small marker.
    legacy = json.dumps({"files": {f"f{i}.csv": "0" * 64 for i in range(500)}, "digests": []})
    requests, _, cursor = evaluate(legacy)
    assert requests == [] and len(cursor or "") < 1024

    (sample_landing / "RTD_2025-04.csv").write_text(HEADER + "RTD,2025-04,FALLS_HARM,5,40000\n")
    [request], _, cursor = evaluate(cursor)
    assert request.tags["dagster/asset_partition_range_start"] == "2025-04-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-04-01"
    assert len(cursor) < 1024

    # An identical re-drop of a loaded return, under a new name, is not new.
    (sample_landing / "RTD_2025-04.csv").unlink()
    shutil.copy(sample_landing / "2023-05" / "RTD_2023-04.csv", sample_landing / "RTD_again.csv")
    assert evaluate(None)[0] == []


def test_sensor_skips_quickly_while_a_run_writes_the_working_file(settings, monkeypatch):
    """DuckDB refuses a read-only open while another process writes: the tick waits a few
    seconds for the writer lock at most, then skips, and never fails."""
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", "")  # measure returns only
    (settings.landing_dir / "RTD_2024-03.csv").write_text(HEADER + "RTD,2024-03,FALLS_HARM,7,9\n")
    ingest_now(settings)  # the working file exists and knows the file
    with holding_the_working_file(settings.working_db):
        started = time.monotonic()
        requests, skip, cursor = evaluate(None)
        assert time.monotonic() - started < 10
        assert requests == [] and skip == BUSY
        assert cursor is None
    requests, skip, _ = evaluate(None)  # the run has finished: a normal tick
    assert requests == [] and "no new" in skip
