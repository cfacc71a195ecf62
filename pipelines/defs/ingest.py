"""Ingest assets: the organisation register and the measure returns in the landing folder."""

from datetime import UTC, datetime

import dagster as dg

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.resources import WorkingFileRun
from pipelines.ingest.measure_returns import archive_processed, ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import working_connection

REGISTER_KEYS = [
    dg.AssetKey(["raw", "ods_organisations"]),
    dg.AssetKey(["raw", "local_organisations"]),
]
RETURNS_KEYS = [
    dg.AssetKey(["raw", "measure_values"]),
    dg.AssetKey(["raw", "submission_log"]),
    dg.AssetKey(["raw", "quarantine"]),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="ingest", kinds={"duckdb", "polars"}) for key in REGISTER_KEYS
    ],
    pool=DUCKDB_WRITER_POOL,
    description="Load the configured region's organisations from the ODS extracts and the "
    "local register into raw (replaced whole).",
)
def organisation_register(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        counts = load_register(
            con, settings.ods_dir, settings.local_register, region_icbs=settings.region_icbs
        )
        [(outside,)] = con.execute(
            "select count(*) from raw.organisations_outside_region"
        ).fetchall()
    context.log.info(
        f"organisation register rows by file for {', '.join(settings.region_icbs)}: {counts}; "
        f"{outside} organisations outside the region left out"
    )
    metadata = {
        "rows_by_file": counts,
        "region_icbs": list(settings.region_icbs),
        "organisations_outside_region": outside,
    }
    for key in REGISTER_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="ingest", kinds={"duckdb", "polars"}, deps=REGISTER_KEYS)
        for key in RETURNS_KEYS
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=RETURNS_KEYS[1],
            blocking=True,
            description="Every file: rows read = rows loaded + rows quarantined, the raw "
            "tables hold exactly those rows, and every data record in the file (counted apart "
            "from the parser) reached them.",
        )
    ],
    pool=DUCKDB_WRITER_POOL,
    description="Ingest every new file in the landing folder: rows that pass the rules load "
    "to raw.measure_values, the rest go to raw.quarantine with reasons.",
)
def measure_returns(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        outcomes = ingest_landing(con, settings, run_id=context.run.run_id)
        problems = reconciliation_problems(con)
    if settings.archive_processed:
        moved = archive_processed(outcomes, settings, datetime.now(UTC).date())
        context.log.info(f"moved {moved} processed files to {settings.archive_dir}")
    by_status: dict[str, int] = {}
    for outcome in outcomes:
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        if outcome.status == "rejected":
            context.log.warning(f"rejected {outcome.file_name}: {outcome.reason}")
        for warning in outcome.warnings:
            context.log.warning(f"loaded {outcome.file_name} with a warning: {warning}")
    metadata = {
        "files_seen": len(outcomes),
        **{f"files_{status}": n for status, n in sorted(by_status.items())},
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
        "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
    }
    for key in RETURNS_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="rows_reconcile",
        asset_key=RETURNS_KEYS[1],
        passed=not problems,
        metadata={"files_out_of_balance": len(problems), "examples": problems[:20]},
    )


def reconciliation_problems(con) -> list[str]:
    """Files whose logged counts do not add up, or do not match the rows in raw.

    Rows read are checked against what the parser produced, and the file's records,
    counted apart from the parser when it was read (``records_in_file``), against the
    records that reached raw: so a record the parser lost fails here even though rows
    read = loaded + quarantined still holds.
    """
    rows = con.execute(
        """
        with loaded as (
            select submission_id, count(*) as n from raw.measure_values group by 1
        ), quarantined as (
            select submission_id, count(*) as n from raw.quarantine group by 1
        ), records as (
            select submission_id, count(distinct source_line) as n
            from (
                select submission_id, source_line from raw.measure_values
                union all
                select submission_id, source_line from raw.quarantine
            )
            group by 1
        )
        select log.file_name, log.rows_read, log.rows_loaded, log.rows_quarantined,
               coalesce(loaded.n, 0), coalesce(quarantined.n, 0),
               log.records_in_file, coalesce(records.n, 0),
               coalesce(log.records_without_rows, 0)
        from raw.submission_log as log
        left join loaded using (submission_id)
        left join quarantined using (submission_id)
        left join records using (submission_id)
        -- survey files are reconciled by their own check (raw/survey_responses)
        where coalesce(log.layout, '') not like 'survey%'
          and (log.rows_read <> log.rows_loaded + log.rows_quarantined
               or log.rows_loaded <> coalesce(loaded.n, 0)
               or log.rows_quarantined <> coalesce(quarantined.n, 0)
               or log.records_in_file
                  <> coalesce(records.n, 0) + coalesce(log.records_without_rows, 0))
        order by log.submission_id
        """
    ).fetchall()
    return [
        f"{name}: read {read}, logged loaded {lo} / quarantined {q}, raw has {rl} / {rq}; "
        f"{in_file} records in the file, {reached} reached raw, {blank} had every measure blank"
        for name, read, lo, q, rl, rq, in_file, reached, blank in rows
    ]


defs = dg.Definitions(assets=[organisation_register, measure_returns])
