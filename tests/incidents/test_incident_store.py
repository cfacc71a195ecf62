"""The incident raw tables' schema: the quarantine tables take their columns from the one
DDL in pipelines/warehouse.py, so refused rows read alike whichever source refused them."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.incidents.store import ensure_incident_tables
from pipelines.surveys.store import ensure_survey_tables
from pipelines.warehouse import RAW_DDL

COLUMNS = """
select column_name, data_type, is_nullable
from duckdb_columns()
where schema_name = 'raw' and table_name = ?
order by column_index
"""


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(RAW_DDL)
    ensure_incident_tables(con)
    ensure_survey_tables(con)
    return con


@pytest.mark.parametrize("table", ["incident_quarantine", "kh03_quarantine", "survey_quarantine"])
def test_every_quarantine_table_has_the_columns_of_raw_quarantine(con, table):
    expected = con.execute(COLUMNS, ["quarantine"]).fetchall()
    assert len(expected) == 8
    assert con.execute(COLUMNS, [table]).fetchall() == expected


def test_creating_the_incident_tables_twice_keeps_what_they_hold(con):
    con.execute(
        "insert into raw.kh03_quarantine values "
        "(1, 'kh03.xlsx', 'abc', 7, '{}', ['R1'], 'bad sector', now())"
    )
    ensure_incident_tables(con)
    assert con.execute("select source_line, rules from raw.kh03_quarantine").fetchall() == [
        (7, ["R1"])
    ]
