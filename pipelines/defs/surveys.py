"""Survey assets: safety-culture exports in the survey landing folder -> raw survey tables,
through the intake factory (:mod:`pipelines.defs.intake`)."""

import dagster as dg

from pipelines.defs.ingest import REGISTER_KEYS
from pipelines.defs.intake import IntakeSource, intake_asset
from pipelines.surveys.config import survey_landing_dir
from pipelines.surveys.ingest import ingest_surveys
from pipelines.surveys.reconcile import survey_reconciliation_problems

SURVEY_KEYS = [
    dg.AssetKey(["raw", "survey_waves"]),
    dg.AssetKey(["raw", "survey_questions"]),
    dg.AssetKey(["raw", "survey_responses"]),
    dg.AssetKey(["raw", "survey_answers"]),
    dg.AssetKey(["raw", "survey_quarantine"]),
]
RECONCILED_KEY = SURVEY_KEYS[2]


survey_exports = intake_asset(
    IntakeSource(
        name="survey_exports",
        keys=SURVEY_KEYS,
        check_key=RECONCILED_KEY,
        check_description="Every survey file: responses read = loaded + quarantined, the raw "
        "tables hold exactly those rows, and each loaded response has one answer per "
        "instrument question.",
        description="Ingest new safety-culture survey exports (Qualtrics, SurveyMonkey, "
        "Microsoft Forms; CSV or XLSX): responses that pass the rules load to raw, the rest "
        "go to raw.survey_quarantine with reasons. Names, e-mails, IP addresses and free "
        "text are dropped at read.",
        deps=REGISTER_KEYS,
        ingest=lambda con, settings, run_id: ingest_surveys(
            con, settings, landing_dir=survey_landing_dir(), run_id=run_id
        ),
        reconcile=survey_reconciliation_problems,
        head=lambda settings: {"landing_dir": str(survey_landing_dir())},
        rows="responses",
    )
)


defs = dg.Definitions(assets=[survey_exports])
