"""Measure-return ingest against a real DuckDB file: good rows load, bad rows are
quarantined with the rule they broke, bad files are rejected, and nothing is lost."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from conftest import SAMPLES
from pipelines.defs.ingest import reconciliation_problems
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.warehouse import connect

HEADER = "org_code,period,measure_code,numerator,denominator\n"
TODAY = date(2025, 6, 15)


@pytest.fixture
def con(settings):
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    yield con
    con.close()


def drop(settings, name: str, body: str | bytes) -> Path:
    path = settings.landing_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return path


def ingest(con, settings):
    return ingest_landing(con, settings, run_id="test", today=TODAY)


def quarantine(con) -> dict[int, list[str]]:
    rows = con.execute("select source_line, rules from raw.quarantine order by 1").fetchall()
    return {line: rules for line, rules in rows}


def test_good_rows_load_with_lineage(con, settings):
    drop(
        settings,
        "RTD_2024-03.csv",
        HEADER + "RTD,2024-03,FALLS_HARM,7,41000\nRTD,2024-03,NEWS2_ON_TIME,450,500\n",
    )
    [outcome] = ingest(con, settings)
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded) == ("loaded", 2, 2)
    rows = con.execute(
        "select org_code, period, measure_code, numerator, denominator, source_file, source_line,"
        " length(sha256) from raw.measure_values order by source_line"
    ).fetchall()
    assert rows == [
        ("RTD", date(2024, 3, 1), "FALLS_HARM", 7, 41000, "RTD_2024-03.csv", 2, 64),
        ("RTD", date(2024, 3, 1), "NEWS2_ON_TIME", 450, 500, "RTD_2024-03.csv", 3, 64),
    ]


def test_each_bad_row_is_quarantined_with_the_rule_it_broke(con, settings):
    drop(
        settings,
        "RTD_mixed.csv",
        HEADER
        + "RTD,2024-03,FALLS_HARM,7,41000\n"  # 2 good
        + "XXX,2024-03,FALLS_HARM,1,100\n"  # 3 unknown organisation
        + "RTD,2024-03,FALLS,1,100\n"  # 4 unknown measure
        + "RTD,2024-13,PU_CAT2PLUS,1,100\n"  # 5 invalid period
        + "RTD,2030-01,PU_CAT2PLUS,1,100\n"  # 6 future period
        + "RTD,2018-01,PU_CAT2PLUS,1,100\n"  # 7 before catalogue start
        + "RTD,2024-04,PU_CAT2PLUS,<5,100\n"  # 8 suppressed numerator
        + "RTD,2024-05,PU_CAT2PLUS,-1,100\n"  # 9 negative numerator
        + "RTD,2024-06,PU_CAT2PLUS,1.5,100\n"  # 10 not whole
        + "RTD,2024-07,PU_CAT2PLUS,,100\n"  # 11 blank numerator
        + "RTD,2024-03,SEPSIS_ABX_1H,60,50\n"  # 12 numerator > denominator
        + "RTD,2024-03,MAG_SULPH,3,4\n"  # 13 duplicate key
        + "RTD,2024-03,MAG_SULPH,2,4\n"  # 14 duplicate key
        + "RTF,2024-03,FALLS_HARM,2,30000\n"  # 15 another trust's row in RTD's file
        + "A81632,2024-03,OPIOID_HIGH_DOSE,3,100\n"  # 16 practice closed in 2020
        + " ,2024-03, ,,\n"  # 17 nothing but a period
        + ",,,,\n",  # 18 a wholly blank line is not a row
    )
    [outcome] = ingest(con, settings)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (16, 1, 15)
    got = quarantine(con)
    assert got[3] == ["unknown_organisation"]
    assert got[4] == ["unknown_measure"]
    assert got[5] == ["invalid_period"]
    assert got[6] == ["period_in_future"]
    assert got[7] == ["period_before_catalogue_start"]
    assert got[8] == ["numerator_suppressed"]
    assert got[9] == ["numerator_negative"]
    assert got[10] == ["numerator_not_a_whole_number"]
    assert got[11] == ["numerator_missing"]
    assert got[12] == ["numerator_exceeds_denominator"]
    assert got[13] == got[14] == ["duplicate_key_in_file"]
    assert got[15] == ["organisation_outside_submitter"]
    assert "organisation_not_open_in_period" in got[16]
    assert got[17] == [
        "org_code_missing",
        "measure_code_missing",
        "numerator_missing",
        "denominator_missing",
    ]
    assert 18 not in got
    raw, reasons = con.execute(
        "select raw_record, reasons from raw.quarantine where source_line = 12"
    ).fetchone()
    assert json.loads(raw)["numerator"] == "60"
    assert "numerator 60 exceeds denominator 50" in reasons
    assert reconciliation_problems(con) == []


def test_collated_icb_return_may_carry_its_practices(con, settings):
    drop(
        settings,
        "QHM_2024-03_gp_practices.csv",
        HEADER + "A81001,2024-03,OPIOID_HIGH_DOSE,12,300\n",
    )
    [outcome] = ingest(con, settings)
    assert outcome.rows_loaded == 1


@pytest.mark.parametrize(
    ("name", "body", "rule"),
    [
        ("RTD_empty.csv", b"", "empty_file"),
        ("RTD_header_only.csv", HEADER.encode(), "empty_file"),
        ("RTD_wrong_layout.csv", b"a,b,c\n1,2,3\n", "wrong_layout"),
        ("ZZZ_2024-03.csv", f"{HEADER}RTD,2024-03,FALLS_HARM,1,1\n".encode(), "unknown_submitter"),
        ("RTD_binary.csv", b"\x00\x01\x02\x03" * 10, "binary_content"),
        ("RTD_2024-03.xlsx", b"PK\x03\x04notreally", "unreadable_xlsx"),
    ],
)
def test_bad_files_are_rejected_whole_and_the_run_goes_on(con, settings, name, body, rule):
    drop(settings, name, body)
    drop(settings, "RTF_good.csv", HEADER + "RTF,2024-03,FALLS_HARM,2,30000\n")
    outcomes = {o.file_name: o for o in ingest(con, settings)}
    assert outcomes[name].status == "rejected"
    assert outcomes[name].reason.startswith(rule + ":")
    assert outcomes["RTF_good.csv"].rows_loaded == 1
    assert con.execute("select count(*) from raw.measure_values").fetchone()[0] == 1
    assert reconciliation_problems(con) == []


def test_oversized_file_is_rejected_without_reading_it(con, settings, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_MAX_FILE_BYTES", "100")
    from pipelines.settings import load_settings

    small = load_settings()
    drop(small, "RTD_big.csv", HEADER + "RTD,2024-03,FALLS_HARM,1,100\n" * 10)
    [outcome] = ingest_landing(con, small, today=TODAY)
    assert outcome.status == "rejected" and outcome.reason.startswith("oversized_file")


def test_encodings_headers_and_formats_load_the_same_facts(con, settings):
    drop(
        settings,
        "RTD_a.csv",
        "\ufeffOrg Code,Period,Measure,Numerator,Denominator\n"
        ' rtd ,Mar-24,falls_harm,"1,234","41,000"\n',
    )
    drop(
        settings, "RTF_b.csv", ("ORGANISATION_CODE;PERIOD\n".replace(";", ",") + "x\n").encode()
    )  # wrong layout, proves contract matching is by name
    drop(
        settings,
        "RVW_c.csv",
        (
            "org_code,period,measure_code,numerator,denominator\n"
            "RVW,01/03/2024,FALLS_HARM,5,20000\n# Caf\xe9 note,,,,\n"
        ).encode("cp1252"),
    )
    outcomes = {o.file_name: o for o in ingest(con, settings)}
    assert outcomes["RTD_a.csv"].rows_loaded == 1
    assert outcomes["RTF_b.csv"].status == "rejected"
    assert (outcomes["RVW_c.csv"].rows_loaded, outcomes["RVW_c.csv"].rows_quarantined) == (1, 1)
    facts = con.execute(
        "select org_code, period, measure_code, numerator, denominator from raw.measure_values"
        " order by org_code"
    ).fetchall()
    assert facts == [
        ("RTD", date(2024, 3, 1), "FALLS_HARM", 1234, 41000),
        ("RVW", date(2024, 3, 1), "FALLS_HARM", 5, 20000),
    ]


def test_resubmission_supersedes_and_identical_redrop_changes_nothing(con, settings):
    first = drop(
        settings,
        "a/RTD_2024-03.csv",
        HEADER + "RTD,2024-03,FALLS_HARM,7,41000\nRTD,2024-03,PU_CAT2PLUS,30,41000\n",
    )
    ingest(con, settings)
    drop(settings, "b/RTD_2024-03_corrected.csv", HEADER + "RTD,2024-03,FALLS_HARM,8,41000\n")
    [second] = ingest(con, settings)
    current = con.execute(
        "select measure_code, numerator from raw.measure_values where superseded_by is null"
        " order by 1"
    ).fetchall()
    assert current == [("FALLS_HARM", 8), ("PU_CAT2PLUS", 30)]
    history = con.execute(
        "select numerator, superseded_by from raw.measure_values"
        " where measure_code = 'FALLS_HARM' order by submission_id"
    ).fetchall()
    assert history == [(7, second.submission_id), (8, None)]

    before = con.execute("select count(*) from raw.measure_values").fetchone()[0]
    drop(settings, "c/RTD_copy.csv", first.read_bytes())
    [again] = ingest(con, settings)
    assert again.status == "duplicate"
    assert con.execute("select count(*) from raw.measure_values").fetchone()[0] == before
    assert ingest(con, settings) == []  # nothing new in the landing folder


def test_reason_names_the_dates_even_when_one_is_missing(con, settings):
    # Y08035 opened in October 2023 and has no close date: the reason must still read.
    drop(settings, "QHM_2023-06.csv", HEADER + "Y08035,2023-06,OPIOID_HIGH_DOSE,3,100\n")
    ingest(con, settings)
    [reasons] = con.execute("select reasons from raw.quarantine").fetchone()
    assert reasons == (
        "organisation_not_open_in_period: organisation Y08035 was not open in 2023-06 "
        "(open 2023-10-01, closed none)"
    )
