"""Stage (a): what plain DuckDB takes to load the same files and compute the same roll-up.

docs/design.md §10 states the full-rebuild target as a multiple (4x) of this, measured in the same
run, so the baseline must do the same *work* as the pipeline with none of its guarantees:
read every long CSV with DuckDB's multi-file reader (types given, no sniffing), read the
wide XLSX returns with polars + fastexcel (DuckDB's own ``read_xlsx`` needs an extension
download), load the register, keep the latest file's row per key, drop the rows any analyst
would drop (unknown organisation or measure, negative counts, proportion over 1), and sum
numerators and denominators by ICB x sector x measure x month before dividing. No lineage,
no quarantine reasons, no tests, no publication. The incident extracts (``incident_landing``,
LFPSE-style CSV) the same way: every file read, the latest revision of each reference kept,
events counted by organisation and month.

Run as its own process by the benchmark:
``python -m pipelines.bench.baseline --data DIR --db FILE --result FILE.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import duckdb
import fastexcel
import polars as pl
import yaml

from pipelines.catalogue import CATALOGUE_CSV
from pipelines.ingest.contracts import CONTRACTS_DIR

WIDE_CONTRACT = CONTRACTS_DIR / "wide_nenc_monthly_return.yml"
WIDE_HEADER_ROW = 3  # the national generator's template: two title rows and a blank one

ROLLUP_SQL = """
create table rollup as
with good as (
    select v.*, r.icb_code, r.sector_code, c.multiplier
    from measure_values v
    join register r using (org_code)
    join catalogue c using (measure_code)
    where v.numerator >= 0 and v.denominator >= 0
      and not (c.is_proportion and v.numerator > v.denominator)
),
latest as (
    select * from good
    qualify row_number() over (
        partition by org_code, period, measure_code order by source_file desc
    ) = 1
)
select icb_code, sector_code, measure_code, period,
       count(*) as organisations_reporting,
       sum(numerator)::bigint as numerator,
       sum(denominator)::bigint as denominator,
       sum(numerator) * max(multiplier) / nullif(sum(denominator), 0) as value
from latest
group by all
"""

REGISTER_SQL = """
create table register as
with ods as (
    select column00 as org_code, column01 as org_name, column03 as icb_code,
           case when upper(column01) like '%AMBULANCE%' then 'ambulance_trust'
                else 'acute_trust' end as sector_code
    from read_csv('{etr}', header = false, all_varchar = true)
    union all
    select column00, column01, column03,
           case when column25 = '4' then 'gp_practice' else 'other_prescribing_setting' end
    from read_csv('{epraccur}', header = false, all_varchar = true)
),
local_register as (
    select org_code, nullif(sector_code, '') as sector_code, nullif(icb_code, '') as icb_code
    from read_csv('{local}', header = true, all_varchar = true)
)
select coalesce(o.org_code, l.org_code) as org_code,
       coalesce(l.sector_code, o.sector_code) as sector_code,
       coalesce(l.icb_code, o.icb_code) as icb_code
from ods o full join local_register l using (org_code)
"""

# One row per patient of an event revision: the event is its reference's latest revision.
INCIDENT_ROWS_SQL = """
create table incident_rows as
select Reference as event_ref, Revision::int as revision,
       OccurredOrganisationCode as org_code,
       date_trunc('month', T005::date)::date as period
from read_csv('{files}', header = true, all_varchar = true)
"""
INCIDENT_SQL = """
create table incident_events_monthly as
with latest as (
    select * from incident_rows
    qualify revision = max(revision) over (partition by org_code, event_ref)
)
select org_code, period, count(distinct event_ref) as events
from latest
group by all
"""
INCIDENT_EMPTY_SQL = """
create table incident_events_monthly (org_code varchar, period date, events bigint)
"""


def load_incidents(con: duckdb.DuckDBPyConnection, landing: Path) -> dict[str, int]:
    """Incident extracts under ``landing`` into ``incident_events_monthly`` (organisation x
    month x events); returns the files, rows, events and organisation-months read. No
    extracts (a folder without any) is no incidents, not an error: the rates are absent."""
    files = sorted(landing.glob("*/*.csv")) if landing.is_dir() else []
    rows = 0
    if files:
        con.execute(INCIDENT_ROWS_SQL.format(files=f"{landing}/*/*.csv"))
        con.execute(INCIDENT_SQL)
        rows = con.execute("select count(*) from incident_rows").fetchone()[0]
    else:
        con.execute(INCIDENT_EMPTY_SQL)
    [(events, cells)] = con.execute(
        "select coalesce(sum(events), 0)::bigint, count(*) from incident_events_monthly"
    ).fetchall()
    return {
        "incident_files": len(files),
        "incident_rows": rows,
        "incident_events": events,
        "incident_org_months": cells,
    }


def _key(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def wide_columns() -> dict[str, tuple[str, str]]:
    """measure -> (numerator header key, denominator header key), from the contract."""
    spec = yaml.safe_load(WIDE_CONTRACT.read_text(encoding="utf-8"))
    return {
        code: (_key(pair["numerator"][0]), _key(pair["denominator"][0]))
        for code, pair in spec["measures"].items()
    }


def read_wide_xlsx(paths: list[Path]) -> pl.DataFrame:
    """Every wide XLSX as long rows (org_code, period, measure_code, numerator, denominator,
    source_file)."""
    measures = wide_columns()
    parts = []
    for path in paths:
        sheet = (
            fastexcel.read_excel(path.read_bytes())
            .load_sheet(0, header_row=WIDE_HEADER_ROW)
            .to_polars()
        )
        by_key = {_key(c): c for c in sheet.columns}
        org, month = sheet.columns[0], sheet.columns[1]
        for code, (num_key, den_key) in measures.items():
            if num_key in by_key and den_key in by_key:
                parts.append(
                    sheet.select(
                        pl.col(org).cast(pl.String).alias("org_code"),
                        pl.col(month).cast(pl.Date).alias("period"),
                        pl.lit(code).alias("measure_code"),
                        pl.col(by_key[num_key]).cast(pl.Int64).alias("numerator"),
                        pl.col(by_key[den_key]).cast(pl.Int64).alias("denominator"),
                        pl.lit(str(path)).alias("source_file"),
                    )
                )
    if not parts:
        return pl.DataFrame(
            schema={
                "org_code": pl.String,
                "period": pl.Date,
                "measure_code": pl.String,
                "numerator": pl.Int64,
                "denominator": pl.Int64,
                "source_file": pl.String,
            }
        )
    return pl.concat(parts)


def run_baseline(data: Path, db: Path) -> dict:
    """Load ``data`` (the generator's output) into a new DuckDB file ``db`` and roll it up."""
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    timings: dict[str, float] = {}
    con = duckdb.connect(str(db))
    try:
        t = time.perf_counter()
        con.execute(
            REGISTER_SQL.format(
                etr=data / "ods" / "etr.csv",
                epraccur=data / "ods" / "epraccur.csv",
                local=data / "local_register.csv",
            )
        )
        con.execute(
            f"create table catalogue as select measure_code, multiplier::int as multiplier,"
            f" is_proportion::boolean as is_proportion from read_csv('{CATALOGUE_CSV}')"
        )
        timings["register_s"] = time.perf_counter() - t

        t = time.perf_counter()
        landing = data / "landing"
        con.execute(
            f"""
            create table measure_values as
            select org_code, strptime(period || '-01', '%Y-%m-%d')::date as period,
                   measure_code, numerator, denominator, filename as source_file
            from read_csv('{landing}/*/*.csv', header = true, auto_detect = false,
                          columns = {{'org_code': 'VARCHAR', 'period': 'VARCHAR',
                                      'measure_code': 'VARCHAR', 'numerator': 'BIGINT',
                                      'denominator': 'BIGINT'}},
                          filename = true)
            """
        )
        timings["load_csv_s"] = time.perf_counter() - t

        t = time.perf_counter()
        xlsx_paths = sorted(landing.glob("*/*.xlsx"))
        wide = read_wide_xlsx(xlsx_paths)
        con.register("wide_rows", wide.to_arrow())
        con.execute("insert into measure_values by name select * from wide_rows")
        con.unregister("wide_rows")
        timings["load_xlsx_s"] = time.perf_counter() - t

        t = time.perf_counter()
        incident_counts = load_incidents(con, data / "incident_landing")
        timings["incidents_s"] = time.perf_counter() - t

        t = time.perf_counter()
        con.execute(ROLLUP_SQL)
        con.execute("checkpoint")
        timings["rollup_s"] = time.perf_counter() - t

        rows = con.execute("select count(*) from measure_values").fetchone()[0]
        rollup_rows = con.execute("select count(*) from rollup").fetchone()[0]
        files = con.execute("select count(distinct source_file) from measure_values").fetchone()[0]
    finally:
        con.close()
    return {
        "rows_loaded": rows,
        "files_loaded": files,
        "xlsx_files": len(xlsx_paths),
        "rollup_rows": rollup_rows,
        **incident_counts,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="plain DuckDB baseline (benchmark stage a)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run_baseline(args.data, args.db)
    args.result.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
