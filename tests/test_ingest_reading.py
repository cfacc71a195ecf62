"""Reading files as providers really send them: each file judged alone (one failure never
stops the others), only once it has settled, with a reason that says what the file is; and
a sensor that never asks for a month outside the catalogue window."""

from __future__ import annotations

import os
import time
import unicodedata
from datetime import date

import dagster as dg
import pytest
from reading_inputs import CORPUS, GOOD, HEADER

from conftest import SAMPLES
from pipelines.defs.automation import landing_sensor, months_to_request
from pipelines.defs.ingest import reconciliation_problems
from pipelines.ingest import measure_returns
from pipelines.ingest.files import landed_files
from pipelines.ingest.measure_returns import archive_processed, ingest_landing, pending_files
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import connect

# A title row holding U+2028 LINE SEPARATOR: Python's splitlines() breaks the line there,
# polars does not, so the header is looked for one line off and the reader raises
# ColumnNotFoundError. Whatever becomes of that bug, the file must never stop the others.
HOSTILE = ("Monthly return\u2028for RTD\n" + HEADER + GOOD).encode()


@pytest.fixture(scope="module")
def reading_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reading")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
        mp.setenv("SAFETY_OBS_WORKING_DB", str(tmp_path / "var" / "working.duckdb"))
        mp.setenv("SAFETY_OBS_LANDING_DIR", str(tmp_path / "landing"))
        settings = load_settings()
    settings.landing_dir.mkdir()
    for case in CORPUS:
        (settings.landing_dir / case.name).write_bytes(case.body)
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    outcomes = {o.file_name: o for o in ingest_landing(con, settings, today=date(2025, 6, 1))}
    yield con, outcomes
    con.close()


def test_reading_corpus_has_named_cases():
    assert len(CORPUS) >= 25
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_reading_case_lands_where_it_should_and_says_why(reading_run, case):
    con, outcomes = reading_run
    outcome = outcomes[unicodedata.normalize("NFC", case.name)]
    assert outcome.status == case.status, outcome.reason
    if case.status == "rejected":
        assert outcome.reason.startswith(f"{case.rule}:"), outcome.reason
        assert case.reason_has in outcome.reason, outcome.reason
        assert (outcome.rows_loaded, outcome.rows_quarantined) == (0, 0)
        return
    assert outcome.rows_loaded == case.loaded, outcome
    quarantined = dict(
        con.execute(
            "select source_line, list_zip(rules, [reasons]) from raw.quarantine"
            " where submission_id = ?",
            [outcome.submission_id],
        ).fetchall()
    )
    assert quarantined.keys() == case.bad_lines.keys()
    for line, rule in case.bad_lines.items():
        rules = [r for r, _ in quarantined[line]]
        reasons = quarantined[line][0][1]
        assert rule in rules
        assert case.reason_has in reasons, reasons


def test_reading_corpus_reconciles(reading_run):
    con, _ = reading_run
    assert reconciliation_problems(con) == []


# -- one file's failure is that file's alone ---------------------------------------------------


@pytest.fixture
def register(settings):
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    yield con
    con.close()


def test_a_reader_that_raises_on_one_file_rejects_that_file_only(
    settings, register, monkeypatch, caplog
):
    landing = settings.landing_dir
    for month in ("2024-01", "2024-02", "2024-03"):
        body = HEADER + GOOD.replace("2024-03", month)
        (landing / f"RTD_{month}.csv").write_text(body)
    (landing / "RTD_hostile_line_separator.csv").write_bytes(HOSTILE)
    real = measure_returns.read_measure_file

    def flaky(data, file_name, **kwargs):
        if file_name == "RTD_2024-02.csv":
            raise pl_column_not_found("unable to find column 'org_code'")
        return real(data, file_name, **kwargs)

    monkeypatch.setattr(measure_returns, "read_measure_file", flaky)
    outcomes = {o.file_name: o for o in ingest_landing(register, settings)}

    broken = outcomes["RTD_2024-02.csv"]
    assert broken.status == "rejected"
    assert broken.reason == (
        "unreadable_file: could not be read (ColumnNotFoundError: unable to find column 'org_code')"
    )
    assert "Traceback" in caplog.text and "RTD_2024-02.csv" in caplog.text
    for name in ("RTD_2024-01.csv", "RTD_2024-03.csv"):
        assert outcomes[name].status == "loaded" and outcomes[name].rows_loaded == 1
    hostile = outcomes["RTD_hostile_line_separator.csv"]
    assert hostile.status in ("rejected", "loaded"), hostile
    if hostile.status == "rejected":
        assert hostile.reason.startswith(("unreadable_file:", "wrong_layout:")), hostile.reason
    assert reconciliation_problems(register) == []


def pl_column_not_found(message: str) -> Exception:
    import polars as pl

    return pl.exceptions.ColumnNotFoundError(message)


def test_a_file_that_breaks_the_batch_write_is_rejected_and_the_rest_land(
    settings, register, monkeypatch
):
    """A failure while validating or storing the batch rolls it back; each file is then
    written in its own transaction, so only the one that fails is rejected."""
    landing = settings.landing_dir
    for month in ("2024-01", "2024-02", "2024-03"):
        (landing / f"RTD_{month}.csv").write_text(HEADER + GOOD.replace("2024-03", month))
    real = measure_returns.apply_rules

    def fussy(frame, rules):
        if frame["source_line"].len() and "2024-02" in frame["raw_period"].to_list():
            raise ValueError("validation blew up")
        return real(frame, rules)

    monkeypatch.setattr(measure_returns, "apply_rules", fussy)
    outcomes = {o.file_name: o for o in ingest_landing(register, settings)}
    assert outcomes["RTD_2024-02.csv"].reason == (
        "unreadable_file: could not be read (ValueError: validation blew up)"
    )
    assert [outcomes[f"RTD_2024-0{m}.csv"].status for m in (1, 3)] == ["loaded", "loaded"]
    logged = register.execute("select count(*) from raw.submission_log").fetchone()[0]
    assert logged == 3  # the failed batch attempt left nothing behind
    assert register.execute("select count(*) from raw.measure_values").fetchone()[0] == 2
    assert reconciliation_problems(register) == []


# -- files settle before they are read ----------------------------------------------------------


def age(path, seconds: float) -> None:
    """Make ``path`` look last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_file_is_taken_only_once_it_has_settled(settings, register, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_SETTLE_SECONDS", "30")
    settings = load_settings()
    landing = settings.landing_dir
    growing = landing / "RTD_2024-01_to_03.csv"
    lines = [HEADER, *(GOOD.replace("2024-03", m) for m in ("2024-01", "2024-02", "2024-03"))]

    growing.write_text(lines[0] + lines[1])  # first write: the writer is at it
    assert pending_files(register, settings) == []
    assert ingest_landing(register, settings) == []

    with growing.open("a") as handle:  # second write, a minute later: still being written
        handle.write(lines[2])
    assert ingest_landing(register, settings) == []

    with growing.open("a") as handle:  # last write, then quiet for the settle interval
        handle.write(lines[3])
    age(growing, 31)
    [outcome] = ingest_landing(register, settings)
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 3)


def test_transfers_in_progress_and_excel_lock_files_are_not_files_yet(settings):
    landing = settings.landing_dir
    for name in ("RTD_2024-03.csv.part", "RTD_2024-03.tmp", "~$RTD_return.xlsx", ".RTD.csv"):
        (landing / name).write_text(HEADER + GOOD)
        age(landing / name, 3600)
    (landing / "RTD_2024-03.csv").write_text(HEADER + GOOD)
    assert [p.name for p in landed_files(landing, settle_seconds=30)] == []
    age(landing / "RTD_2024-03.csv", 3600)
    assert [p.name for p in landed_files(landing, settle_seconds=30)] == ["RTD_2024-03.csv"]
    # A sender's clock ahead of ours says nothing about writing now: the file is taken.
    future = time.time() + 3600
    os.utime(landing / "RTD_2024-03.csv", (future, future))
    assert [p.name for p in landed_files(landing, settle_seconds=30)] == ["RTD_2024-03.csv"]


def test_a_file_that_changes_while_being_read_is_left_for_the_next_run(
    settings, register, monkeypatch
):
    landing = settings.landing_dir
    target = landing / "RTD_2024-03.csv"
    target.write_text(HEADER + GOOD)
    (landing / "RTD_2024-04.csv").write_text(HEADER + GOOD.replace("2024-03", "2024-04"))
    real = measure_returns.file_state
    calls = {"n": 0}

    def writer_still_busy(path):
        state = real(path)
        if path == target:
            calls["n"] += 1
            if calls["n"] == 2:  # after reading: the writer appended meanwhile
                with target.open("a") as handle:
                    handle.write(GOOD.replace("2024-03", "2024-02"))
                state = real(path)
        return state

    monkeypatch.setattr(measure_returns, "file_state", writer_still_busy)
    outcomes = ingest_landing(register, settings)
    assert [o.file_name for o in outcomes] == ["RTD_2024-04.csv"]
    moved = archive_processed(outcomes, settings, date.today())
    assert moved.moved == 1 and target.exists()  # not logged, not archived

    monkeypatch.setattr(measure_returns, "file_state", real)
    [outcome] = ingest_landing(register, settings)  # the next run reads it whole
    assert (outcome.file_name, outcome.rows_loaded) == ("RTD_2024-03.csv", 2)


# -- the sensor: never crashes on a file, never asks for months outside the window ------------


def evaluate():
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral())
    return landing_sensor.evaluate_tick(context)


def test_sensor_asks_only_for_months_inside_the_catalogue_window(settings, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", "")
    (settings.landing_dir / "RTD_odd_months.csv").write_text(
        HEADER + "RTD,1900-01,FALLS_HARM,1,10\nRTD,2099-12,FALLS_HARM,1,10\n" + GOOD
    )
    [request] = evaluate().run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-01"

    (settings.landing_dir / "RTD_odd_months.csv").write_text(
        HEADER + "RTD,1900-01,FALLS_HARM,1,10\nRTD,2099-12,FALLS_HARM,1,10\n"
    )
    [request] = evaluate().run_requests  # nothing in the window: still a run, inside it
    start = request.tags["dagster/asset_partition_range_start"]
    end = request.tags["dagster/asset_partition_range_end"]
    window = (settings.catalogue_start.isoformat(), date.today().replace(day=1).isoformat())
    assert window[0] <= start <= end <= window[1]


def test_months_to_request_keeps_the_window_only():
    claimed = {date(1900, 1, 1), date(2019, 3, 1), date(2019, 4, 1), date(2025, 6, 1)}
    claimed |= {date(2025, 7, 1), date(2099, 12, 1)}
    assert months_to_request(claimed, date(2019, 4, 1), date(2025, 6, 15)) == {
        date(2019, 4, 1),
        date(2025, 6, 1),
    }


def test_sensor_never_crashes_on_a_file(settings, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", "")
    (settings.landing_dir / "RTD_hostile.csv").write_bytes(HOSTILE)
    (settings.landing_dir / "RTD_2024-03.csv").write_text(HEADER + GOOD)

    def explode(*args, **kwargs):
        raise RuntimeError("reader bug")

    monkeypatch.setattr(measure_returns, "read_tables", explode)
    [request] = evaluate().run_requests
    assert request.tags["dagster/asset_partition_range_start"] <= date.today().isoformat()
