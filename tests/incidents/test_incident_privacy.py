"""Names, NHS numbers, dates of birth, postcodes, e-mail addresses and free-text notes
planted in both extract layouts (CSV and XLSX, in dropped columns and in kept code columns)
appear nowhere after a full pipeline run: not in any table of the working file, not in the
published files (both tiers' DuckDB files, Parquet, CSV, sites, reports, manifest), not in
the logs or Dagster's run history."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from incident_inputs import DATIX_HEADER, LFPSE_HEADER, datix_row, lfpse_row

from conftest import start_demo

NAME = "Zebedee Quartermaine"
NHS = ["4010232137", "401 023 2137", "9434765919"]
DOB = ["14/03/1947", "1947-03-14"]
POSTCODE = ["NE99 7QZ", "DL98 3XW"]
EMAIL = "zebedee.q@example.org"
NOTE = "tripped over the commode while awaiting transfer"
# Runs the whole pipeline (python -m pipelines.cli demo): the e2e tier (docs/development.md).
pytestmark = pytest.mark.e2e

SECRETS = [NAME, "Quartermaine", *NHS, *DOB, *POSTCODE, EMAIL, NOTE]


def _lfpse() -> bytes:
    header = LFPSE_HEADER + ",PatientName,NHSNumber,DateOfBirth,ReporterContact,Postcode"
    planted = f",{NAME},{NHS[0]},{DOB[1]},{EMAIL},{POSTCODE[0]}"
    rows = [
        lfpse_row(Reference=f"70000{i:02d}", F001=f"{NAME} {NOTE}") + planted for i in range(12)
    ]
    # Kept code columns holding personal data or free text: quarantined, value withheld.
    rows.append(lfpse_row(Reference="7000100", L006=NHS[1]) + planted)
    rows.append(lfpse_row(Reference="7000101", L004=POSTCODE[1]) + planted)
    rows.append(lfpse_row(Reference="7000102", L004=f"{NAME} {NOTE}") + planted)
    rows.append(lfpse_row(Reference="7000103", CL001=EMAIL) + planted)
    return "\n".join([header, *rows]).encode()


def _datix_rows() -> list[str]:
    rows = [
        datix_row(recordid=f"6600{i}", inc_name=NAME, con_nhsno=NHS[2], INC_NOTES=NOTE)
        + f",{DOB[0]},{POSTCODE[0]},{EMAIL}"
        for i in range(10)
    ]
    rows.append(datix_row(recordid="66100", inc_specialty=NAME) + f",{DOB[0]},{POSTCODE[1]},x")
    rows.append(datix_row(recordid="66101", inc_category=DOB[0]) + f",{DOB[0]},{POSTCODE[1]},x")
    return rows


def _datix_csv() -> bytes:
    return "\n".join([DATIX_HEADER + ",inc_dob,inc_postcode,con_email", *_datix_rows()]).encode()


def _datix_xlsx() -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, [f"Incidents reported by {NAME}"])  # a title row: dropped too
    sheet.write_row(2, 0, (DATIX_HEADER + ",inc_dob,inc_postcode,con_email").split(","))
    for i, row in enumerate(_datix_rows(), start=3):
        cells = next(__import__("csv").reader([row.replace("66", "77", 1)]))
        sheet.write_row(i, 0, cells)
    book.close()
    return buffer.getvalue()


def _hits_in_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    pattern = "|".join(re.escape(s) for s in SECRETS)
    found = []
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ?",
        [catalog],
    ).fetchall()
    assert tables, catalog
    for schema, table in tables:
        name = f'"{catalog}"."{schema}"."{table}"'
        n = con.execute(
            f"select count(*) from {name} t where regexp_matches(t::varchar, ?)", [pattern]
        ).fetchone()[0]
        if n:
            found.append(f"{catalog}.{schema}.{table}: {n} rows")
    return found


def test_planted_personal_data_appears_nowhere(tmp_path):
    landing = tmp_path / "incidents"
    (landing / "2024-04").mkdir(parents=True)
    (landing / "2024-04" / "QHM_lfpse_planted.csv").write_bytes(_lfpse())
    (landing / "2024-04" / "RTD_datix_planted.csv").write_bytes(_datix_csv())
    (landing / "2024-04" / "RTD_datix_planted.xlsx").write_bytes(_datix_xlsx())
    demo = start_demo(tmp_path, env={"SAFETY_OBS_INCIDENT_LANDING_DIR": str(landing)})
    out, err = demo.communicate(timeout=1800)
    assert demo.returncode == 0, out[-3000:] + err[-3000:]

    var = tmp_path / "var"
    working = var / "warehouse" / "working.duckdb"
    with duckdb.connect(str(working), read_only=True) as con:
        # The planted files were read: good rows loaded, code columns holding personal
        # data or free text quarantined.
        loaded, quarantined = con.execute(
            "select sum(rows_loaded), sum(rows_quarantined) from raw.submission_log"
            " where layout like 'incidents%'"
        ).fetchone()
        assert (loaded, quarantined) == (12 + 10 + 10, 4 + 2 + 2)
        # The XLSX export is later than the CSV and covers the same organisation and month
        # without the CSV's incidents: they count as deleted (docs/incidents.md).
        assert con.execute("select count(*) from marts.fct_incident").fetchone()[0] == 22
        problems = _hits_in_tables(con, "working")
    published = (var / "published" / "current").resolve()
    databases = sorted(published.rglob("*.duckdb"))
    assert len(databases) == 2  # internal and public tier
    for database in databases:
        with duckdb.connect(str(database), read_only=True) as con:
            catalog = con.execute("select current_database()").fetchone()[0]
            problems += _hits_in_tables(con, catalog)
    # Every other file the run wrote: exports, sites, reports, manifest, logs, run history.
    needles = [s.encode() for s in SECRETS]
    files = [p for p in var.rglob("*") if p.is_file() and p.suffix not in (".duckdb", ".wal")]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".html" for p in files)
    for path in files:
        if path.suffix == ".parquet":
            with duckdb.connect() as con:
                text = str(con.execute(f"select * from read_parquet('{path}')").fetchall())
            data = text.encode()
        else:
            data = path.read_bytes()
        problems += [f"{path.relative_to(var)}: {s!r}" for s in needles if s in data]
    assert problems == []
