"""The demo's last lines name how many of fct_measure_monthly's rows were derived from
incident records, beside the returned rows the sample generator's manifest predicts."""

from __future__ import annotations

import duckdb

from pipelines.cli import fact_rows_by_source, facts_line


def test_the_fact_rows_are_counted_by_the_source_of_their_measure(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create table dim_measure (measure_code varchar, source varchar)")
        con.execute(
            "insert into dim_measure values ('FALLS_HARM', 'returns'),"
            " ('INC_REPORTING_RATE', 'incidents'), ('INC_REPORTING_LAG', 'incidents')"
        )
        con.execute("create table fct_measure_monthly (measure_code varchar, period date)")
        con.execute(
            "insert into fct_measure_monthly select 'FALLS_HARM', date '2024-01-01' from range(7)"
            " union all select 'INC_REPORTING_RATE', date '2024-01-01' from range(3)"
            " union all select 'INC_REPORTING_LAG', date '2024-01-01' from range(2)"
        )
        by_source = fact_rows_by_source(con)
    assert by_source == {"returns": 7, "incidents": 5}
    assert facts_line(by_source, 7) == (
        "12 rows (7 from returns + 5 derived from incident records; the sample generator wrote 7)"
    )
    assert facts_line({"returns": 7}, None) == "7 rows (7 from returns)"
