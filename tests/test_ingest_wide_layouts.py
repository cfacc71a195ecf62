"""Wide provider templates (XLSX under title rows, Windows-1252 CSV with 'Mar-24' months)
load to exactly the facts of their long-layout equivalents."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
import xlsxwriter

from conftest import SAMPLES
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.warehouse import connect

# (org, month, falls, pressure ulcers, bed days, obs on time, obs audited)
RETURNS = [
    ("RTD", date(2024, 3, 1), 7, 52, 41000, 455, 500),
    ("RTD", date(2024, 4, 1), 5, 47, 39500, 470, 510),
    ("RTF", date(2024, 3, 1), 3, 21, 30100, 380, 420),
]
WIDE_HEADER = [
    "Organisation code",
    "Month",
    "Falls with moderate or severe harm",
    "New category 2-4 pressure ulcers",
    "Occupied bed days",
    "NEWS2 observations on time",
    "NEWS2 observations audited",
]


def long_csv() -> bytes:
    lines = ["org_code,period,measure_code,numerator,denominator"]
    for org, month, falls, pu, obd, on_time, audited in RETURNS:
        p = month.strftime("%Y-%m")
        lines += [
            f"{org},{p},FALLS_HARM,{falls},{obd}",
            f"{org},{p},PU_CAT2PLUS,{pu},{obd}",
            f"{org},{p},NEWS2_ON_TIME,{on_time},{audited}",
        ]
    return ("\n".join(lines) + "\n").encode()


def wide_xlsx() -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet("Return")
    sheet.write(0, 0, "North East and North Cumbria Patient Safety Collaborative")
    sheet.write(1, 0, "Monthly safety return - submitted by the Trust's safety team")
    sheet.write_row(2, 0, WIDE_HEADER)
    dates = book.add_format({"num_format": "mmm-yy"})
    for r, (org, month, *counts) in enumerate(RETURNS, start=3):
        sheet.write(r, 0, org)
        sheet.write_datetime(r, 1, datetime(month.year, month.month, 1), dates)
        sheet.write_row(r, 2, counts)
    book.close()
    return buf.getvalue()


def wide_cp1252_csv() -> bytes:
    lines = ["Return for NHS Trusts in the North East \u2013 r\u00e9vision \u00a32", ""]
    lines.append(",".join(f'"{h}"' for h in WIDE_HEADER))
    for org, month, falls, pu, obd, on_time, audited in RETURNS:
        lines.append(f'{org.lower()},{month:%b-%y},{falls},{pu},"{obd:,}",{on_time},{audited}')
    return "\r\n".join(lines).encode("cp1252")


def facts(con, submission_id: int) -> list[tuple]:
    return con.execute(
        "select org_code, period, measure_code, numerator, denominator from raw.measure_values"
        " where submission_id = ? order by all",
        [submission_id],
    ).fetchall()


@pytest.mark.parametrize(
    ("name", "body"),
    [("QHM_wide_return.xlsx", wide_xlsx), ("QHM_wide_return_cp1252.csv", wide_cp1252_csv)],
)
def test_wide_file_loads_the_same_facts_as_long(settings, name, body):
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    (settings.landing_dir / "a").mkdir()
    (settings.landing_dir / "b").mkdir()
    (settings.landing_dir / "a" / "QHM_long_return.csv").write_bytes(long_csv())
    (settings.landing_dir / "b" / name).write_bytes(body())
    long, wide = ingest_landing(con, settings, today=date(2025, 1, 1))
    assert (long.status, wide.status) == ("loaded", "loaded"), wide.reason
    assert wide.rows_loaded == wide.rows_read == 9
    assert facts(con, wide.submission_id) == facts(con, long.submission_id)
    layout = con.execute(
        "select layout from raw.submission_log where submission_id = ?", [wide.submission_id]
    ).fetchone()[0]
    assert layout == "wide_nenc_monthly_return"
    con.close()


def test_wide_row_with_a_blank_measure_makes_no_row_and_bad_cells_quarantine(settings):
    con = connect(settings.working_db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    header = ",".join(WIDE_HEADER)
    (settings.landing_dir / "RTD_wide.csv").write_text(
        f"{header}\nRTD,2024-03,7,,41000,,\nRTD,2024-04,<5,3,41000,500,450\n"
    )
    [outcome] = ingest_landing(con, settings, today=date(2025, 1, 1))
    # Line 2: falls only (PU blank with a bed-days denominator is a row, NEWS2 pair blank is
    # not). Line 3: three measures, two of them bad.
    rules = dict(
        con.execute("select raw_record->>'measure_code', rules from raw.quarantine").fetchall()
    )
    assert rules == {
        "PU_CAT2PLUS": ["numerator_missing"],
        "FALLS_HARM": ["numerator_suppressed"],
        "NEWS2_ON_TIME": ["numerator_exceeds_denominator"],
    }
    assert (outcome.rows_read, outcome.rows_loaded) == (5, 2)
    con.close()
