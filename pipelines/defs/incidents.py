"""Incident assets: LFPSE-style extracts and local risk-management exports in the incident
landing folder -> raw incident tables (docs/incidents.md).

Files are also logged in ``raw.submission_log`` (layout ``incidents_*``); that table's asset
belongs to measure-return ingest, so it is written here but not declared. dbt's ``raw``
sources name the keys below, which links the incident models to this asset.
"""

from typing import Any

import dagster as dg

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.ingest import REGISTER_KEYS
from pipelines.defs.resources import WorkingFileRun
from pipelines.incidents.ingest import incident_reconciliation_problems, ingest_incidents
from pipelines.incidents.kh03 import ingest_kh03
from pipelines.settings import load_settings
from pipelines.warehouse import working_connection

INCIDENT_KEYS = [
    dg.AssetKey(["raw", "incident_records"]),
    dg.AssetKey(["raw", "incident_extracts"]),
    dg.AssetKey(["raw", "incident_quarantine"]),
    # KH03 bed occupancy: the denominator of the incident rates (docs/incidents.md).
    dg.AssetKey(["raw", "kh03_beds"]),
    dg.AssetKey(["raw", "kh03_quarantine"]),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="ingest", kinds={"duckdb", "polars"}, deps=REGISTER_KEYS)
        for key in INCIDENT_KEYS
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=INCIDENT_KEYS[0],
            blocking=True,
            description="Every incident file: rows read = loaded + quarantined, and the raw "
            "tables hold exactly those rows.",
        )
    ],
    pool=DUCKDB_WRITER_POOL,
    description="Ingest new incident extracts (LFPSE-style or Datix-style, CSV or XLSX): "
    "only the contract's allow-listed columns are read, so personal data and free text are "
    "dropped at read; rows that pass the rules load to raw, the rest go to "
    "raw.incident_quarantine with reasons. KH03 bed occupancy files (the rates' occupied bed "
    "days) load to raw.kh03_beds the same way.",
)
def incident_extracts(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        outcomes = ingest_incidents(con, settings, run_id=context.run.run_id)
        outcomes += ingest_kh03(con, settings, run_id=context.run.run_id)
        problems = incident_reconciliation_problems(con)
    by_status: dict[str, int] = {}
    for outcome in outcomes:
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        if outcome.status == "rejected":
            context.log.warning(f"rejected {outcome.file_name}: {outcome.reason}")
    metadata: dict[str, Any] = {
        "landing_dir": str(settings.incident_landing_dir),
        "kh03_landing_dir": str(settings.kh03_landing_dir),
        "files_seen": len(outcomes),
        **{f"files_{status}": n for status, n in sorted(by_status.items())},
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
        "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
    }
    for key in INCIDENT_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="rows_reconcile",
        asset_key=INCIDENT_KEYS[0],
        passed=not problems,
        metadata={"files_out_of_balance": len(problems), "examples": problems[:20]},
    )


defs = dg.Definitions(assets=[incident_extracts])
