"""Survey ingest against a real DuckDB file: good responses load with lineage, bad ones are
quarantined with the rule they broke, bad files are rejected, and nothing is lost."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from bad_inputs import zip_that_lies_about_sizes
from survey_support import (
    WAVE_ID,
    every_cell,
    instrument,
    question_ids,
    spec,
    survey_exports,
    working_file,
    write_wave,
)

from pipelines.settings import load_settings
from pipelines.surveys.config import MAX_UNZIPPED_ENV
from pipelines.surveys.ingest import ingest_surveys
from pipelines.surveys.reconcile import survey_reconciliation_problems

Respondent = survey_exports.Respondent
AGREE_ALL = dict.fromkeys(question_ids(), "Agree")


@pytest.fixture
def con(settings):
    con = working_file(settings.working_db)
    yield con
    con.close()


@pytest.fixture
def landing(tmp_path) -> Path:
    return tmp_path / "survey_landing"


@pytest.fixture
def wave(landing) -> Path:
    return write_wave(landing / "w1")


def people(n: int, *, first: int = 1, **overrides) -> list[Respondent]:
    return [
        Respondent(
            response_id=str(first + i),
            submitted_at=datetime(2024, 3, 5, 9, i),
            answers=dict(AGREE_ALL),
            name="Jo Bloggs",
            email="jo.bloggs@example.org",
            comment="free text",
            **overrides,
        )
        for i in range(n)
    ]


def ingest(con, settings, landing):
    return ingest_surveys(con, settings, landing_dir=landing, run_id="test")


def quarantined(con) -> dict[int, list[str]]:
    rows = con.execute("select source_line, rules from raw.survey_quarantine order by 1")
    return dict(rows.fetchall())


def test_responses_load_with_lineage_and_reverse_scoring(con, settings, landing, wave):
    answers = {**AGREE_ALL, "TW1": "Strongly agree", "TW3": "Strongly agree", "CM1": ""}
    answers["CM2"] = "Don't know"
    answers["CM3"] = "not applicable"
    respondent = Respondent("R_abc", datetime(2024, 3, 5, 9, 0), answers, status="IP Address")
    data = survey_exports.qualtrics(instrument(), [respondent], spec())
    (wave / "RTD_export.csv").write_bytes(data)
    [outcome] = ingest(con, settings, landing)
    assert (outcome.status, outcome.layout, outcome.rows_read, outcome.rows_loaded) == (
        "loaded",
        "survey_qualtrics",
        1,
        1,
    )
    scores = dict(con.execute("select question_id, score from raw.survey_answers").fetchall())
    assert scores["TW1"] == 5
    assert scores["TW3"] == 1  # reverse-scored: strongly agreeing with a negative item
    assert scores["CM1"] is None and scores["CM2"] is None and scores["CM3"] is None
    assert scores["TW2"] == 4 and len(scores) == len(question_ids())
    [(org, wave_id, response_id, line, source)] = con.execute(
        "select org_code, wave_id, response_id, source_line, source_file from raw.survey_responses"
    ).fetchall()
    assert (org, wave_id, line, source) == ("RTD", WAVE_ID, 4, "RTD_export.csv")
    assert response_id != "R_abc" and len(response_id) == 32  # hashed, not the tool's id
    assert survey_reconciliation_problems(con) == []


def test_each_bad_response_is_quarantined_with_the_rule_it_broke(con, settings, landing, wave):
    rows = people(8, organisation="RTD")
    rows[1] = Respondent(**{**rows[1].__dict__, "answers": {**AGREE_ALL, "PS2": "Somewhat agree"}})
    rows[2] = Respondent(**{**rows[2].__dict__, "response_id": "7"})  # 7 appears twice
    rows[3] = Respondent(**{**rows[3].__dict__, "submitted_at": datetime(2024, 4, 2, 10, 0)})
    rows[4] = Respondent(**{**rows[4].__dict__, "organisation": "Nowhere General Hospital"})
    rows[5] = Respondent(**{**rows[5].__dict__, "organisation": ""})
    rows[7] = Respondent(**{**rows[7].__dict__, "organisation": "RTF"})
    data = survey_exports.msforms(instrument(), rows, spec(organisation=True), xlsx=False)
    (wave / "QHM_collated.csv").write_bytes(data)
    [outcome] = ingest(con, settings, landing)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (8, 2, 6)
    got = quarantined(con)
    assert got[3] == ["unknown_answer_label"]
    assert got[4] == got[8] == ["duplicate_response_id"]
    assert got[5] == ["outside_wave_window"]
    assert got[6] == ["unknown_organisation"]
    assert got[7] == ["organisation_missing"]
    record, reasons = con.execute(
        "select raw_record, reasons from raw.survey_quarantine where source_line = 3"
    ).fetchone()
    assert json.loads(record)["answers"]["PS2"] == "Somewhat agree"
    assert "PS2 'Somewhat agree'" in reasons
    # RTF is in QHM's ICB, so the ICB's collated export may carry it.
    loaded = con.execute("select org_code from raw.survey_responses order by 1").fetchall()
    assert loaded == [("RTD",), ("RTF",)]
    assert survey_reconciliation_problems(con) == []


def test_organisation_outside_the_submitter_is_quarantined(con, settings, landing, wave):
    rows = people(2, organisation="RTF")
    data = survey_exports.msforms(instrument(), rows, spec(organisation=True), xlsx=False)
    (wave / "RTD_collated.csv").write_bytes(data)
    ingest(con, settings, landing)
    assert set(map(tuple, quarantined(con).values())) == {("organisation_outside_submitter",)}


def test_preview_responses_and_unreadable_times_are_quarantined(con, settings, landing, wave):
    rows = people(3, first=10)
    rows[0] = Respondent(**{**rows[0].__dict__, "status": "Survey Preview"})
    data = survey_exports.qualtrics_legacy(instrument(), rows, spec())
    text = data.decode("utf-8").replace("2024-03-05 09:02:00", "next Tuesday")
    (wave / "RR7_legacy.csv").write_bytes(text.encode("utf-8"))
    [outcome] = ingest(con, settings, landing)
    assert outcome.layout == "survey_qualtrics_legacy"
    assert quarantined(con) == {3: ["test_response"], 5: ["invalid_response_time"]}


def test_organisation_by_register_name_and_staff_group_from_contract(con, settings, landing):
    folder = write_wave(
        landing / "w1", extra='files:\n  - match: "QHM_care*"\n    staff_group: Care staff\n'
    )
    rows = people(2, organisation="care home vne02 ") + people(1, first=3, organisation="VNE03")
    data = survey_exports.msforms(
        instrument(), rows, spec(organisation=True, staff_group=False), xlsx=True
    )
    (folder / "QHM_care_homes.xlsx").write_bytes(data)
    [outcome] = ingest(con, settings, landing)
    assert outcome.rows_loaded == 3
    got = con.execute(
        "select org_code, staff_group, count(*) from raw.survey_responses group by all order by 1"
    ).fetchall()
    assert got == [("VNE02", "Care staff", 2), ("VNE03", "Care staff", 1)]


def _zip_bomb(expanded_bytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * expanded_bytes)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "body", "rule"),
    [
        ("RTD_empty.csv", b"", "empty_file"),
        ("RTD_wrong_layout.csv", b"org_code,period,measure_code\nRTD,2024-03,X\n", "wrong_layout"),
        ("RTD_headerless.csv", b"1,2024-03-05,jo@example.org,Agree\n", "wrong_layout"),
        ("RTD_bomb.xlsx", _zip_bomb(3_000_000), "xlsx_inflates_too_far"),
        ("RTD_lying.xlsx", zip_that_lies_about_sizes(), "unreadable_xlsx"),
        ("RTD_not_a_zip.xlsx", b"PK\x03\x04notreally", "unreadable_xlsx"),
        ("RTD_export.pdf", b"%PDF-1.4", "unsupported_file_type"),
        ("ZZZ_export.csv", b"ID,Start time,Completion time\n1,x,y\n", "unknown_submitter"),
    ],
)
def test_bad_files_are_rejected_whole_and_the_run_goes_on(
    con, settings, landing, wave, monkeypatch, name, body, rule
):
    monkeypatch.setenv(MAX_UNZIPPED_ENV, str(1_000_000))
    settings = load_settings()
    (wave / name).write_bytes(body)
    good = survey_exports.qualtrics(instrument(), people(2), spec())
    (wave / "RTF_good.csv").write_bytes(good)
    outcomes = {o.file_name: o for o in ingest(con, settings, landing)}
    assert outcomes[name].status == "rejected"
    assert outcomes[name].reason.startswith(rule + ":"), outcomes[name].reason
    assert outcomes["RTF_good.csv"].rows_loaded == 2
    logged = con.execute(
        "select status, layout, reason from raw.submission_log where file_name = ?", [name]
    ).fetchone()
    assert logged[0] == "rejected" and logged[1] == "survey" and logged[2].startswith(rule)
    assert "jo@example.org" not in logged[2]
    assert survey_reconciliation_problems(con) == []


def test_export_missing_an_instrument_question_is_rejected(con, settings, landing, wave):
    order = [q for q in question_ids() if q != "JC2"]
    data = survey_exports.qualtrics(instrument(), people(2), spec(order))
    (wave / "RTD_short.csv").write_bytes(data)
    [outcome] = ingest(con, settings, landing)
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("missing_questions:") and "JC2" in outcome.reason


def test_files_without_a_valid_wave_contract_are_rejected(con, settings, landing):
    data = survey_exports.qualtrics(instrument(), people(1), spec())
    (landing / "no_wave").mkdir(parents=True)
    (landing / "no_wave" / "RTD_a.csv").write_bytes(data)
    write_wave(landing / "bad_wave", opens_on="2024-04-01", closes_on="2024-03-01")
    (landing / "bad_wave" / "RTD_b.csv").write_bytes(data)
    write_wave(landing / "clash")  # the same wave id as ...
    write_wave(landing / "first")  # ... this folder, which sorts after it
    (landing / "first" / "RTD_c.csv").write_bytes(data)
    outcomes = {o.file_name: o.reason for o in ingest(con, settings, landing)}
    assert outcomes["RTD_a.csv"].startswith("no_wave_contract:")
    assert outcomes["RTD_b.csv"].startswith("invalid_wave_contract:")
    assert "closes_on" in outcomes["RTD_b.csv"]
    assert outcomes["RTD_c.csv"].startswith("invalid_wave_contract:")
    assert "already defined in clash" in outcomes["RTD_c.csv"]


def test_identical_redrop_changes_nothing_and_reexport_supersedes(con, settings, landing, wave):
    first = survey_exports.qualtrics(instrument(), people(3), spec())
    (wave / "RTD_a.csv").write_bytes(first)
    ingest(con, settings, landing)
    assert ingest(con, settings, landing) == []  # same path, same bytes: not even looked at
    (wave / "RTD_a_again.csv").write_bytes(first)
    [again] = ingest(con, settings, landing)
    assert again.status == "duplicate"
    corrected = people(4)
    better = dict.fromkeys(question_ids(), "Strongly agree")
    corrected[0] = Respondent(**{**corrected[0].__dict__, "answers": better})
    (wave / "RTD_b_corrected.csv").write_bytes(
        survey_exports.qualtrics(instrument(), corrected, spec())
    )
    [later] = ingest(con, settings, landing)
    current = con.execute(
        "select count(*), count(distinct response_id) from raw.survey_responses"
        " where superseded_by is null"
    ).fetchone()
    assert current == (4, 4)
    superseded = con.execute(
        "select count(*) from raw.survey_responses where superseded_by = ?", [later.submission_id]
    ).fetchone()[0]
    assert superseded == 3
    assert survey_reconciliation_problems(con) == []


def test_personal_data_is_dropped_even_from_quarantine(con, settings, landing, wave):
    """E-mails, names, IP addresses and comments never reach a table, and a typed sentence
    or address in an answer cell is withheld from the quarantine record and reason."""
    rows = people(2, ip_address="198.51.100.23")
    rows[0] = Respondent(
        **{
            **rows[0].__dict__,
            "answers": {**AGREE_ALL, "CV2": "ask my.boss@example.org about it"},
            "comment": "SECRET-COMMENT-42",
        }
    )
    (wave / "RTD_pii.csv").write_bytes(survey_exports.qualtrics(instrument(), rows, spec()))
    [outcome] = ingest(con, settings, landing)
    assert outcome.rows_quarantined == 1
    cells = " | ".join(text for _, text in every_cell(con))
    for needle in ("example.org", "Jo Bloggs", "Bloggs", "198.51.100.23", "SECRET-COMMENT"):
        assert needle not in cells
    assert "CV2 '[withheld: 32 characters]'" in cells


def test_an_unexpected_error_rejects_the_file_without_quoting_it(
    con, settings, landing, wave, monkeypatch
):
    def broken(grid, file_name):
        raise RuntimeError("cell said jo.bloggs@example.org")

    monkeypatch.setattr("pipelines.surveys.ingest.detect_layout", broken)
    (wave / "RTD_a.csv").write_bytes(survey_exports.qualtrics(instrument(), people(1), spec()))
    [outcome] = ingest(con, settings, landing)
    assert outcome.status == "rejected"
    assert outcome.reason == "unreadable_export: RuntimeError while reading the export"
