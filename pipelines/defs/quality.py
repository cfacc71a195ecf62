"""Great Expectations audit of the marts, as a blocking check in every run.

Suites live in ``expectations/gx`` (versioned JSON); they run on pandas batches read from
the working file (GX's SQL path fails on DuckDB), limited to the run's months when the
run covers a range. Results and Data Docs are kept per run under ``var/quality/<run id>``
for the publish step to ship with the snapshot.
"""

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import dagster as dg

from pipelines.defs.dbt import MART_KEYS
from pipelines.settings import load_settings

FACT_KEY = next(k for k in MART_KEYS if k.path[-1] == "fct_measure_monthly")
AUDITED_MARTS = [
    k
    for k in MART_KEYS
    if k.path[-1].startswith("fct_measure_") or k.path[-1] in ("dim_organisation", "dim_measure")
]


def quality_dir(run_id: str) -> Path:
    return load_settings().var_dir / "quality" / run_id


def _run_months(tags: Mapping[str, str]) -> tuple[date, date] | None:
    """The months a run covers, from its tags: a range (what the command line, the sensor
    and the schedule launch) or one partition (a month launched from the UI); None, so the
    audit reads every month, for an unpartitioned run."""
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return date.fromisoformat(start), date.fromisoformat(end)
    single = tags.get("dagster/partition")
    if single:
        month = date.fromisoformat(single)
        return month, month
    return None


@dg.asset_check(
    asset=FACT_KEY,
    name="gx_expectations",
    blocking=True,
    additional_deps=[k for k in AUDITED_MARTS if k != FACT_KEY],
    description="Great Expectations suites (expectations/gx) on the marts: keys, ranges by "
    "unit, numerator <= denominator, every month present, row counts against raw.",
)
def gx_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from pipelines.quality.gx_audit import run_expectations  # GX imports slowly: only here

    settings = load_settings()
    out = quality_dir(context.run.run_id)
    months = _run_months(context.run.tags)
    result = run_expectations(settings.working_db, data_docs_dir=out / "data_docs", periods=months)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.results, indent=1, default=str))
    failures = result.failures
    return dg.AssetCheckResult(
        passed=result.passed,
        metadata={
            "expectations": len(result.results),
            "failed": len(failures),
            "months": str(months) if months else "all",
            "failures": [
                f"{f['table']}: {f['expectation_type']} {f.get('column') or ''}".strip()
                for f in failures[:50]
            ],
        },
    )


defs = dg.Definitions(asset_checks=[gx_expectations])
