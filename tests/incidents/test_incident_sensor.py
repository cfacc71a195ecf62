"""The incident folders' landing sensor (docs/incidents.md), tested as the returns' landing
sensor is (tests/test_orchestration.py): keyed on content, state in the working file, the
run covering the months the new files hold, a busy working file skipped quickly."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import LFPSE_HEADER, kh03_xlsx, lfpse_row
from support.holder import holding_the_working_file

from conftest import SAMPLES
from pipelines.defs.automation import BUSY
from pipelines.defs.incidents import incident_landing_sensor
from pipelines.incidents.ingest import ingest_incidents
from pipelines.incidents.kh03 import ingest_kh03
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import working_connection

START = "dagster/asset_partition_range_start"
END = "dagster/asset_partition_range_end"


def evaluate(cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral())
    result = incident_landing_sensor.evaluate_tick(context)
    return result.run_requests, result.skip_message, result.cursor


def ingest_now() -> None:
    """What the requested run's incident step does to the working file."""
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
        ingest_incidents(con, settings)
        ingest_kh03(con, settings)


def extract(*event_dates: str) -> str:
    rows = [
        lfpse_row(Reference=f"70000{i}", T005=day, SubmissionDate="2024-06-03")
        for i, day in enumerate(event_dates)
    ]
    return "\n".join([LFPSE_HEADER, *rows]) + "\n"


def test_the_sensor_requests_the_event_months_of_new_extracts_and_keys_on_content(settings):
    landing = settings.incident_landing_dir
    landing.mkdir()
    (landing / "QHM_lfpse_2024Q1.csv").write_text(extract("2024-01-15", "2024-03-02"))
    [request], _, cursor = evaluate()
    assert (request.tags[START], request.tags[END]) == ("2024-01-01", "2024-03-01")
    first_key = request.run_key

    requests, skip, cursor = evaluate(cursor)  # nothing new since the request
    assert requests == [] and "wait for run key" in skip

    ingest_now()  # the run: the working file now knows the extract
    requests, skip, _ = evaluate(None)  # known from the working file, not the cursor
    assert requests == [] and "no new" in skip

    shutil.copy(landing / "QHM_lfpse_2024Q1.csv", landing / "QHM_lfpse_again.csv")
    assert evaluate(cursor)[0] == []  # identical re-drop under another name

    # A corrected extract under the old name: new, for the months it now holds.
    (landing / "QHM_lfpse_2024Q1.csv").write_text(extract("2024-02-10", "2024-05-20"))
    [corrected], _, cursor = evaluate(cursor)
    assert (corrected.tags[START], corrected.tags[END]) == ("2024-02-01", "2024-05-01")
    assert corrected.run_key != first_key
    assert len(cursor) < 200 and evaluate(json.dumps(json.loads(cursor)))[0] == []


def test_the_sensor_watches_the_kh03_folder_for_the_quarters_a_file_holds(settings):
    kh03 = settings.kh03_landing_dir
    kh03.mkdir()
    (kh03 / "KH03_2023-24_Q3.xlsx").write_bytes(
        kh03_xlsx([["RTD", "NEWCASTLE", 900, 0, 80, 0]], year="2023-24", period_end="December")
    )
    [request], _, _ = evaluate()
    assert (request.tags[START], request.tags[END]) == ("2023-10-01", "2023-12-01")
    ingest_now()
    requests, skip, _ = evaluate(None)
    assert requests == [] and "no new" in skip


def test_an_unreadable_extract_still_starts_a_run(settings):
    settings.incident_landing_dir.mkdir()
    (settings.incident_landing_dir / "RTD_broken.csv").write_bytes(b"\x00\x01")
    [request], _, _ = evaluate()
    assert request.tags[START] == request.tags[END]  # the latest closed month: ingest says why


def test_the_sensor_skips_quickly_while_a_run_writes_the_working_file(settings):
    settings.incident_landing_dir.mkdir()
    (settings.incident_landing_dir / "QHM_lfpse.csv").write_text(extract("2024-01-15"))
    ingest_now()  # the working file exists and knows the extract
    with holding_the_working_file(settings.working_db):
        started = time.monotonic()
        requests, skip, cursor = evaluate(None)
        assert time.monotonic() - started < 10
        assert requests == [] and skip == BUSY and cursor is None
    requests, skip, _ = evaluate(None)
    assert requests == [] and "no new" in skip
