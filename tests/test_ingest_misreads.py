"""Issue 12: nothing is read by guess, every line ending is read, and a record lost between
the file and raw fails the reconciliation (the corpus cases are in ``bad_inputs.py``)."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest
from bad_inputs import (
    GOOD,
    HEADER,
    MISREAD_GOOD_CASES,
    WIDE_HEADER,
    install_contracts,
)

from conftest import SAMPLES
from pipelines.defs.ingest import reconciliation_problems
from pipelines.ingest import contracts
from pipelines.ingest.measure_returns import ingest_landing, periods_in_file
from pipelines.ingest.organisations import load_register
from pipelines.ingest.reading import RawTable
from pipelines.warehouse import connect

TODAY = date(2025, 6, 1)


@pytest.fixture
def con(settings):
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    yield con
    con.close()


@pytest.fixture
def provider_contracts(tmp_path, monkeypatch):
    """The shipped contracts plus the corpus's three provider contracts."""
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", install_contracts(tmp_path / "contracts"))


def _log(con, submission_id: int) -> tuple:
    return con.execute(
        "select rows_read, records_in_file, records_without_rows from raw.submission_log"
        " where submission_id = ?",
        [submission_id],
    ).fetchone()


def _facts(con, submission_id: int) -> list[tuple]:
    return con.execute(
        "select org_code, period, measure_code, numerator, denominator, source_line"
        " from raw.measure_values where submission_id = ? order by source_line, measure_code",
        [submission_id],
    ).fetchall()


def test_a_batch_with_a_lone_cr_file_loads_every_other_file(con, settings):
    """A classic-Mac CSV used to raise ColumnNotFoundError inside ingest, failing the batch."""
    month = SAMPLES / "landing" / "2024-05"
    shutil.copytree(month, settings.landing_dir / "2024-05")
    (settings.landing_dir / "2024-05" / "RTD_2024-04_from_a_mac.csv").write_bytes(
        (HEADER + "RTD,2024-04,DEVICE_INCIDENTS,3,41000\nRTD,2024-04,MAG_SULPH,3,4\n")
        .replace("\n", "\r")
        .encode()
    )
    outcomes = ingest_landing(con, settings, today=TODAY)
    assert len(outcomes) == len(list(month.iterdir())) + 1
    assert {o.status for o in outcomes} == {"loaded"}, [o.reason for o in outcomes]
    mac = next(o for o in outcomes if o.file_name == "RTD_2024-04_from_a_mac.csv")
    assert (mac.rows_loaded, mac.rows_quarantined) == (2, 0)
    assert reconciliation_problems(con) == []


def test_mixed_line_endings_load_all_three_rows(con, settings):
    """CRLF, LF and a lone CR in one file: polars read 2 rows for 3 and nothing noticed."""
    (settings.landing_dir / "RTD_mixed.csv").write_bytes(
        (
            HEADER.replace("\n", "\r\n")
            + "RTD,2024-03,FALLS_HARM,7,41000\n"
            + "RTD,2024-03,PU_CAT2PLUS,30,41000\r"
            + "RTD,2024-03,NEWS2_ON_TIME,455,500\r\n"
        ).encode()
    )
    [outcome] = ingest_landing(con, settings, today=TODAY)
    assert _log(con, outcome.submission_id) == (3, 3, 0)
    assert _facts(con, outcome.submission_id) == [
        ("RTD", date(2024, 3, 1), "FALLS_HARM", 7, 41000, 2),
        ("RTD", date(2024, 3, 1), "PU_CAT2PLUS", 30, 41000, 3),
        ("RTD", date(2024, 3, 1), "NEWS2_ON_TIME", 455, 500, 4),
    ]


def test_a_record_the_parser_loses_fails_the_reconciliation(con, settings, monkeypatch):
    """rows read = loaded + quarantined holds for what was read; the record count, taken
    apart from the parser, shows the file had one more."""
    body = HEADER + GOOD + "RTD,2024-03,PU_CAT2PLUS,30,41000\nRTD,2024-03,NEWS2_ON_TIME,455,500\n"
    (settings.landing_dir / "RTD_2024-03.csv").write_text(body)
    parse = RawTable.read_below
    monkeypatch.setattr(
        RawTable, "read_below", lambda self, row, name: parse(self, row, name).head(-1)
    )
    [outcome] = ingest_landing(con, settings, today=TODAY)
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded) == ("loaded", 2, 2)
    assert reconciliation_problems(con) == [
        "RTD_2024-03.csv: read 2, logged loaded 2 / quarantined 0, raw has 2 / 0; "
        "3 records in the file, 2 reached raw, 0 had every measure blank"
    ]


def test_wide_records_with_every_measure_blank_reconcile(con, settings):
    """A template row filled in ahead (organisation and month, no figures) makes no row;
    the log says so, and the reconciliation counts it as read."""
    (settings.landing_dir / "RTD_wide.csv").write_text(
        f"{WIDE_HEADER}\nRTD,2024-03,7,52,41000\nRTD,2024-04,,,\nRTD,2024-05,5,,39000\n"
    )
    [outcome] = ingest_landing(con, settings, today=TODAY)
    # 2024-03: falls and pressure ulcers; 2024-05: falls, and pressure ulcers quarantined
    # (numerator blank beside the bed days).
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (4, 3, 1)
    assert _log(con, outcome.submission_id) == (4, 3, 1)
    assert reconciliation_problems(con) == []


def test_declared_locales_and_the_files_own_dates_load_the_right_facts(
    con, settings, provider_contracts
):
    for case in MISREAD_GOOD_CASES:
        (settings.landing_dir / case.name).write_bytes(case.body)
    outcomes = {o.file_name: o for o in ingest_landing(con, settings, today=TODAY)}
    march, april = date(2024, 3, 1), date(2024, 4, 1)

    def facts(name: str) -> list[tuple]:
        return _facts(con, outcomes[name].submission_id)

    assert facts("RTD_thousands_comma_en_GB.csv") == [("RTD", march, "FALLS_HARM", 1000, 41000, 2)]
    assert facts("RTF_de_DE_decimal_comma_and_thousands_point.csv") == [
        ("RTF", march, "FALLS_HARM", 3, 30100, 2),
        ("RTF", march, "PU_CAT2PLUS", 12, 30100, 3),
    ]
    assert facts("RVW_day_first_settled_by_the_file.csv") == [
        ("RVW", date(2024, 2, 1), "FALLS_HARM", 4, 20000, 2),
        ("RVW", march, "FALLS_HARM", 5, 20000, 3),
    ]
    # Title block from D4, header on sheet row 6: source_line is the sheet row.
    assert facts("RTD_template_away_from_the_corner.xlsx") == [
        ("RTD", march, "FALLS_HARM", 7, 41000, 7),
        ("RTD", march, "PU_CAT2PLUS", 52, 41000, 7),
        ("RTD", april, "FALLS_HARM", 5, 39500, 8),
        ("RTD", april, "PU_CAT2PLUS", 47, 39500, 8),
    ]
    # The title's line break is line 2: the header is line 3, the row line 4.
    assert [f[-1] for f in facts("RTD_title_cell_with_a_line_break.csv")] == [4]
    hidden = outcomes["R0B_hidden_row_loaded_with_warning.xlsx"]
    assert hidden.warnings == ("hidden_cells: row 5 holds data but is hidden",)
    assert reconciliation_problems(con) == []


def test_the_sensor_reads_months_as_ingest_does(settings, provider_contracts):
    """The landing sensor asks a file for its months: an ambiguous date yields none."""
    landing = settings.landing_dir
    settled = landing / "RVW_settled.csv"
    settled.write_text(
        HEADER + "RVW,01/02/2024,FALLS_HARM,4,20000\nRVW,15/03/2024,FALLS_HARM,5,1\n"
    )
    unsettled = landing / "RVW_unsettled.csv"
    unsettled.write_text(HEADER + "RVW,01/02/2024,FALLS_HARM,4,20000\n")
    declared = landing / "RTD_declared.csv"
    declared.write_text(HEADER + "RTD,01/02/2024,FALLS_HARM,4,20000\n")
    assert periods_in_file(settled, settings) == {date(2024, 2, 1), date(2024, 3, 1)}
    assert periods_in_file(unsettled, settings) == set()
    assert periods_in_file(declared, settings) == {date(2024, 2, 1)}


def test_a_working_file_from_before_gains_the_new_log_columns(settings):
    """``connect`` adds the columns to a submission log created without them; its old rows
    keep reconciling (no record count to compare)."""
    settings.working_db.parent.mkdir(parents=True)
    old = duckdb.connect(str(settings.working_db))
    old.execute(
        """
        create schema raw;
        create table raw.submission_log (
            submission_id bigint primary key, file_name varchar not null,
            source_path varchar not null, sha256 varchar not null, size_bytes bigint not null,
            received_at timestamp not null, submitter_code varchar, layout varchar,
            period_min date, period_max date, rows_read bigint not null,
            rows_loaded bigint not null, rows_quarantined bigint not null,
            status varchar not null, reason varchar, duplicate_of bigint, run_id varchar
        );
        insert into raw.submission_log values (1, 'RTD_old.csv', 'RTD_old.csv', 'x', 1,
            now(), 'RTD', 'long_measure_return', null, null, 0, 0, 0, 'loaded', null, null, null);
        """
    )
    old.close()
    con = connect(settings.working_db)
    columns = {row[0] for row in con.execute("describe raw.submission_log").fetchall()}
    assert {"records_in_file", "records_without_rows", "warnings"} <= columns
    assert reconciliation_problems(con) == []
    con.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("number_locale: xx-XX", "number_locale 'xx-XX' is not one of en-GB"),
        ("date_order: DDMM", "date_order must be one of DMY, MDY, YMD"),
        ("hidden_cells: ignore", "hidden_cells must be one of refuse, load_with_warning"),
        (
            "columns:\n  org_code: [org]\n  period: [period]\n  measure_code: [measure]\n"
            "  numerator: [count]\n  denominator: [count]",
            "alias 'count' is used by two columns",
        ),
    ],
)
def test_a_contract_that_would_guess_is_refused_at_load(tmp_path, change, message):
    base = (contracts.CONTRACTS_DIR / "long_measure_return.yml").read_text()
    if change.startswith("columns:"):
        base = base[: base.index("columns:")]
    (tmp_path / "broken.yml").write_text(f"{base}\n{change}\n")
    with pytest.raises(ValueError, match=message):
        contracts.load_contracts(tmp_path)
