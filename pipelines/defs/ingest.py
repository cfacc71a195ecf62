"""Ingest assets: the organisation register and the measure returns in the landing folder."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.intake import IntakeSource, intake_asset
from pipelines.defs.partitions import CONFIRM_REGISTER_TAG
from pipelines.defs.resources import WorkingFileRun
from pipelines.ingest.measure_returns import (
    SubmissionOutcome,
    archive_processed,
    ingest_landing,
)
from pipelines.ingest.organisations import RegisterRefused, load_register
from pipelines.settings import Settings, load_settings
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
    check_specs=[
        dg.AssetCheckSpec(
            "register_files_accepted",
            asset=REGISTER_KEYS[0],
            blocking=False,
            description="Every register file was recognised and the register as a whole "
            "accepted (raw.register_log). A warning: when the new register is refused, the "
            "previous one stays in place and the run goes on with it.",
        )
    ],
    pool=DUCKDB_WRITER_POOL,
    description="Judge the ODS extracts and the local register, and if they pass, load the "
    "configured region's organisations into raw (replaced whole); else keep the register "
    "in place.",
)
def organisation_register(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    settings = load_settings()
    confirm = context.run.tags.get(CONFIRM_REGISTER_TAG, "").lower() == "true"
    refused: RegisterRefused | None = None
    counts: dict[str, int] = {}
    with working_connection(settings.working_db) as con:
        try:
            counts = load_register(
                con,
                settings.ods_dir,
                settings.local_register,
                region_icbs=settings.region_icbs,
                run_id=context.run.run_id,
                confirm=confirm,
            )
        except RegisterRefused as refusal:
            refused = refusal
        [(held,)] = con.execute("select count(*) from raw.ods_organisations").fetchall()
        [(outside,)] = con.execute(
            "select count(*) from raw.organisations_outside_region"
        ).fetchall()
        verdicts = con.execute(
            "select file_name, status, layout, vintage, rows_in_region, reason, notes"
            " from raw.register_log"
            " where judged_at = (select max(judged_at) from raw.register_log)"
            " order by register_log_id"
        ).fetchall()
    if refused is not None:
        for verdict in refused.causes:
            context.log.error(f"register file refused: {verdict.file_name}: {verdict.reason}")
        if not held:
            raise dg.Failure(
                description="The organisation register was refused and there is no earlier "
                f"register to keep: {refused}",
                metadata={"verdicts": [list(map(str, v)) for v in verdicts]},
            )
        context.log.warning(
            "The new organisation register was refused (see raw.register_log); the previous "
            f"register ({held} ODS organisations of {', '.join(settings.region_icbs)}) stays "
            "in place and this run goes on with it."
        )
    else:
        for _, _, _, _, _, _, notes in verdicts:
            if notes:
                context.log.info(f"register: {notes}")
        context.log.info(
            f"organisation register rows by file for {', '.join(settings.region_icbs)}: "
            f"{counts}; {outside} organisations outside the region left out"
        )
    metadata = {
        "register": "refused, previous register kept" if refused else "loaded",
        "rows_by_file": counts,
        "region_icbs": list(settings.region_icbs),
        "organisations_outside_region": outside,
        "register_files": {
            name: {
                "status": status,
                "layout": layout,
                "vintage": str(vintage) if vintage else None,
                "rows_in_region": rows,
                "reason": reason,
            }
            for name, status, layout, vintage, rows, reason, _ in verdicts
        },
    }
    for key in REGISTER_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="register_files_accepted",
        asset_key=REGISTER_KEYS[0],
        passed=refused is None,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "refused": [f"{v.file_name}: {v.reason}" for v in (refused.causes if refused else [])]
        },
    )


def _archive(outcomes: Sequence[SubmissionOutcome], settings: Settings, log: Any) -> dict[str, Any]:
    """Move the processed files to the archive, after the commit: archiving never fails
    the run (see archive_processed); the files left in landing are counted and named."""
    archive_problems: tuple[str, ...] = ()
    if settings.archive_processed:
        archived = archive_processed(list(outcomes), settings, datetime.now(UTC).date())
        archive_problems = archived.problems
        log.info(f"moved {archived.moved} processed files to {settings.archive_dir}")
        for problem in archive_problems:
            log.warning(f"archiving: {problem}")
    metadata: dict[str, Any] = {"files_not_archived": len(archive_problems)}
    if archive_problems:
        metadata["archive_problems"] = list(archive_problems[:50])
    return metadata


measure_returns = intake_asset(
    IntakeSource(
        name="measure_returns",
        keys=RETURNS_KEYS,
        check_key=RETURNS_KEYS[1],
        check_description="Every file: rows read = rows loaded + rows quarantined, the raw "
        "tables hold exactly those rows, and every data record in the file (counted apart "
        "from the parser) reached them.",
        description="Ingest every new file in the landing folder: rows that pass the rules "
        "load to raw.measure_values, the rest go to raw.quarantine with reasons.",
        deps=REGISTER_KEYS,
        ingest=lambda con, settings, run_id: ingest_landing(con, settings, run_id=run_id),
        reconcile=lambda con: reconciliation_problems(con),
        after=_archive,
    )
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
        -- survey and incident files are reconciled by their own checks
        -- (raw/survey_responses, raw/incident_records)
        where coalesce(log.layout, '') not like 'survey%'
          and coalesce(log.layout, '') not like 'incidents%'
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
