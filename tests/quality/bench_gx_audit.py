"""Timing of the GX audit on a synthetic warehouse far larger than the sample (not a test).

The audit runs on every pipeline run, so its cost on a big fact table matters. This builds
a working file with the raw and mart tables the audit reads (the marts computed with the
same SQL shape as the dbt models) and times ``run_expectations`` on it:

    .venv/bin/python tests/quality/bench_gx_audit.py [fact rows, default 1000000]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import connect

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"
MEASURES = 14  # rows in measure_catalogue.csv
MONTHS = 120


def build(path: Path, fact_rows: int) -> None:
    """Raw values and marts for ``fact_rows`` facts: organisations x 14 measures x 120 months."""
    organisations = -(-fact_rows // (MEASURES * MONTHS))
    con = connect(path)
    try:
        con.execute("create schema marts")
        con.execute(
            "create table marts.dim_measure as select * from read_csv(?, types = {"
            "'multiplier': 'integer', 'is_proportion': 'boolean', 'target': 'double'})",
            [str(SEEDS / "measure_catalogue.csv")],
        )
        con.execute(
            "create table marts.dim_sector as select * from read_csv(?)",
            [str(SEEDS / "sectors.csv")],
        )
        con.execute(
            "create table marts.dim_organisation as select 'ORG' || lpad(i::varchar, 6, '0')"
            " as org_code, (select list(sector_code) from marts.dim_sector)[1 + i % 9]"
            " as sector_code, 'ICB' || (i % 7)::varchar as icb_code"
            f" from range({organisations}) as t(i)"
        )
        con.execute(
            "insert into raw.measure_values select 1, o.org_code,"
            " (date '2015-04-01' + to_months(m.i))::date, c.measure_code,"
            " (hash(o.org_code, c.measure_code, m.i) % 50)::bigint,"
            " 50 + (hash(c.measure_code, o.org_code, m.i) % 5000)::bigint, null, 'bench.csv',"
            " 'x', 1, now()"
            f" from marts.dim_organisation as o, marts.dim_measure as c, range({MONTHS}) as m(i)"
            f" limit {fact_rows}"
        )
        con.execute(
            "create table marts.fct_measure_monthly as select v.org_code, v.measure_code,"
            " v.period, o.org_code as reporting_org_code, o.sector_code, o.icb_code,"
            " c.programme_code, v.numerator, v.denominator,"
            " case when v.denominator > 0 then v.numerator::double * c.multiplier / v.denominator"
            " end as value, v.submission_id, v.source_file, v.loaded_at"
            " from raw.measure_values as v join marts.dim_organisation as o using (org_code)"
            " join marts.dim_measure as c using (measure_code)"
        )
        for name, keys in {
            "fct_measure_by_sector_monthly": "icb_code, sector_code, measure_code, period",
            "fct_measure_by_icb_monthly": "icb_code, measure_code, period",
            "fct_measure_by_programme_monthly": "programme_code, measure_code, period",
        }.items():
            con.execute(
                f"create table marts.{name} as select {keys}, count(*) as organisations_reporting,"
                " sum(numerator)::bigint as numerator, sum(denominator)::bigint as denominator,"
                " case when sum(denominator) > 0 then sum(numerator)::double"
                " * max(c.multiplier) / sum(denominator) end as value"
                " from marts.fct_measure_monthly join (select measure_code, multiplier"
                " from marts.dim_measure) as c using (measure_code)"
                f" group by {keys}"
            )
    finally:
        con.close()


def main(fact_rows: int) -> None:
    from pipelines.quality.gx_audit import run_expectations

    with tempfile.TemporaryDirectory() as tmp:
        working = Path(tmp) / "working.duckdb"
        build(working, fact_rows)
        started, cpu = time.perf_counter(), time.process_time()
        import great_expectations  # noqa: F401  (timed apart: paid once per process)

        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"import great_expectations: {elapsed:.1f}s wall, {cpu:.1f}s CPU")
        for label, periods, docs in [
            ("all months, no Data Docs", None, None),
            ("all months, with Data Docs", None, Path(tmp) / "docs"),
            ("3 months, with Data Docs", (date(2024, 1, 1), date(2024, 3, 1)), Path(tmp) / "d3"),
        ]:
            started, cpu = time.perf_counter(), time.process_time()
            result = run_expectations(working, docs, periods)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"{label}: {elapsed:.1f}s wall, {cpu:.1f}s CPU, passed={result.passed}, "
                f"fact rows={result.rows_validated['fct_measure_monthly']:,}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
