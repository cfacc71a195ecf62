"""Publish: only a build audited in this very run reaches analysts.

Dagster's blocking checks stop downstream steps in the same run, but a later run that
selects only this asset would skip them; so publication itself re-reads this run's event
log and refuses unless every upstream asset was built and every check passed here.
"""

import dagster as dg

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.dbt import MART_KEYS
from pipelines.defs.ingest import RETURNS_KEYS
from pipelines.publish.snapshot import publish
from pipelines.settings import load_settings

AUDITED_KEYS = [*RETURNS_KEYS, *MART_KEYS]


def audit_of_this_run(context: dg.AssetExecutionContext) -> tuple[list[dict], list[str]]:
    """(check results, problems) for this run: problems empty means safe to publish."""
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id,
        of_type={
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        },
        limit=1_000_000,
    ).records
    built: set[dg.AssetKey] = set()
    checks: list[dict] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            built.add(event.asset_key)
        else:
            evaluation = event.event_specific_data
            checks.append(
                {
                    "asset": evaluation.asset_key.to_user_string(),
                    "check": evaluation.check_name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                }
            )
    problems = [
        f"{k.to_user_string()} was not built in this run" for k in AUDITED_KEYS if k not in built
    ]
    problems += [
        f"check {c['check']} on {c['asset']} failed"
        for c in checks
        if not c["passed"] and c["severity"] == "ERROR"
    ]
    if not checks:
        problems.append("no quality checks ran in this run")
    return checks, problems


@dg.asset(
    deps=AUDITED_KEYS,
    group_name="publish",
    kinds={"duckdb", "parquet"},
    pool=DUCKDB_WRITER_POOL,
    description="Promote the audited marts to a new published snapshot (atomic swap).",
)
def published_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    checks, problems = audit_of_this_run(context)
    if problems:
        raise dg.Failure(
            description="Publication refused; the last good snapshot stays published.",
            metadata={"problems": problems},
        )
    settings = load_settings()
    tables = {key.path[-1]: f"marts.{key.path[-1]}" for key in MART_KEYS}
    publication = publish(
        settings.working_db,
        settings.published_dir,
        tables,
        run_id=context.run.run_id,
        check_results=checks,
        keep=settings.snapshots_to_keep,
    )
    return dg.MaterializeResult(
        metadata={
            "snapshot": dg.MetadataValue.path(str(publication.snapshot_dir)),
            "current": dg.MetadataValue.path(str(settings.published_current)),
            "row_counts": publication.manifest["row_counts"],
            "checks_passed": len(checks),
        }
    )


defs = dg.Definitions(assets=[published_snapshot])
