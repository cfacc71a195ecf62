"""Event-driven runs: the landing sensor, partitioned backfills, the nightly schedule, the
completeness mart, and two runs at once on one working file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date, datetime

import dagster as dg
import duckdb

from conftest import SAMPLES, run_full_pipeline
from pipelines.defs.automation import landing_sensor, nightly_refresh
from pipelines.settings import load_settings

HEADER = "org_code,period,measure_code,numerator,denominator\n"


def evaluate(cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral())
    result = landing_sensor.evaluate_tick(context)
    return result.run_requests, result.skip_message, result.cursor


def test_sensor_requests_the_months_in_new_files_and_keys_on_content(settings):
    landing = settings.landing_dir
    (landing / "RTD_2024-03.csv").write_text(HEADER + "RTD,2024-03,FALLS_HARM,7,41000\n")
    (landing / "QHM_2024-01_gp.csv").write_text(
        HEADER + "A81001,Jan-24,OPIOID_HIGH_DOSE,12,300\nA81002,2024-02,OPIOID_HIGH_DOSE,3,90\n"
    )
    [request], _, cursor = evaluate()
    assert request.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-01"
    first_key = request.run_key

    requests, skip, cursor = evaluate(cursor)  # nothing new
    assert requests == [] and "no new" in skip

    shutil.copy(landing / "RTD_2024-03.csv", landing / "RTD_2024-03_copy.csv")
    requests, skip, cursor = evaluate(cursor)  # identical re-drop under another name
    assert requests == []

    (landing / "RTD_2024-03.csv").write_text(HEADER + "RTD,2024-05,FALLS_HARM,8,41000\n")
    [corrected], _, cursor = evaluate(cursor)  # corrected file under the old name
    assert corrected.tags["dagster/asset_partition_range_start"] == "2024-05-01"
    assert corrected.tags["dagster/asset_partition_range_end"] == "2024-05-01"
    assert corrected.run_key != first_key

    # The cursor is plain JSON: what the daemon stores in DAGSTER_HOME and hands back after
    # a restart; a fresh evaluation with it sees nothing new.
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


def test_backfill_of_three_months_rebuilds_only_them_and_is_idempotent(settings, sample_landing):
    assert run_full_pipeline().success
    before = published_facts(settings)
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

    again = run_full_pipeline(instance, months=(date(2024, 4, 1), date(2024, 6, 1)))
    assert again.success
    assert published_facts(settings) == after


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
    assert "surveys/2025-spring/RTD_forms.csv" in json.loads(cursor)["files"]
    assert evaluate(cursor)[0] == []
