"""Survey assets: safety-culture exports in the survey landing folder -> raw survey tables.

Files are also logged in ``raw.submission_log`` (layout ``survey_*``); that table's asset
belongs to measure-return ingest, so it is written here but not declared. dbt's ``raw``
sources name the keys below, which links the survey models to this asset.
"""

from typing import Any

import dagster as dg

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.ingest import REGISTER_KEYS
from pipelines.defs.resources import WorkingFileRun
from pipelines.settings import load_settings
from pipelines.surveys.config import survey_landing_dir
from pipelines.surveys.ingest import ingest_surveys
from pipelines.surveys.reconcile import survey_reconciliation_problems
from pipelines.warehouse import working_connection

SURVEY_KEYS = [
    dg.AssetKey(["raw", "survey_waves"]),
    dg.AssetKey(["raw", "survey_questions"]),
    dg.AssetKey(["raw", "survey_responses"]),
    dg.AssetKey(["raw", "survey_answers"]),
    dg.AssetKey(["raw", "survey_quarantine"]),
]
RECONCILED_KEY = SURVEY_KEYS[2]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="ingest", kinds={"duckdb", "polars"}, deps=REGISTER_KEYS)
        for key in SURVEY_KEYS
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=RECONCILED_KEY,
            blocking=True,
            description="Every survey file: responses read = loaded + quarantined, the raw "
            "tables hold exactly those rows, and each loaded response has one answer per "
            "instrument question.",
        )
    ],
    pool=DUCKDB_WRITER_POOL,
    description="Ingest new safety-culture survey exports (Qualtrics, SurveyMonkey, "
    "Microsoft Forms; CSV or XLSX): responses that pass the rules load to raw, the rest go "
    "to raw.survey_quarantine with reasons. Names, e-mails, IP addresses and free text "
    "are dropped at read.",
)
def survey_exports(context: dg.AssetExecutionContext, working_file_run: WorkingFileRun):
    settings = load_settings()
    landing = survey_landing_dir()
    with working_connection(settings.working_db) as con:
        outcomes = ingest_surveys(con, settings, landing_dir=landing, run_id=context.run.run_id)
        problems = survey_reconciliation_problems(con)
    by_status: dict[str, int] = {}
    for outcome in outcomes:
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        if outcome.status == "rejected":
            context.log.warning(f"rejected {outcome.file_name}: {outcome.reason}")
    metadata: dict[str, Any] = {
        "landing_dir": str(landing),
        "files_seen": len(outcomes),
        **{f"files_{status}": n for status, n in sorted(by_status.items())},
        "responses_loaded": sum(o.rows_loaded for o in outcomes),
        "responses_quarantined": sum(o.rows_quarantined for o in outcomes),
    }
    for key in SURVEY_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="rows_reconcile",
        asset_key=RECONCILED_KEY,
        passed=not problems,
        metadata={"files_out_of_balance": len(problems), "examples": problems[:20]},
    )


defs = dg.Definitions(assets=[survey_exports])
