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

from pipelines.defs.check_text import markdown_table, plain
from pipelines.defs.dbt import MART_KEYS
from pipelines.memory import release_memory
from pipelines.months import month_from_key
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
        return month_from_key(start), month_from_key(end)
    single = tags.get("dagster/partition")
    if single:
        month = month_from_key(single)
        return month, month
    return None


def gx_metadata(
    results: list[dict], failures: list[dict], months: tuple[date, date] | None
) -> dict[str, dg.MetadataValue]:
    """The check's metadata as a person reads it in the UI: counts as numbers, the months as
    ISO text (``2024-04-01..2025-03-01``, or ``all``), the failed expectations as a small
    markdown table (table, expectation, column, why it matters)."""
    shown = failures[:50]
    return {
        "expectations": dg.MetadataValue.int(len(results)),
        "failed": dg.MetadataValue.int(len(failures)),
        "months": dg.MetadataValue.text("..".join(plain(list(months))) if months else "all"),
        "failures": dg.MetadataValue.md(
            markdown_table(
                ["table", "expectation", "column", "why it matters"],
                [
                    [f["table"], f["expectation_type"], f.get("column"), f.get("notes")]
                    for f in shown
                ],
            )
            if shown
            else "none"
        ),
    }


@dg.asset_check(
    asset=FACT_KEY,
    name="gx_expectations",
    blocking=True,
    additional_deps=[k for k in AUDITED_MARTS if k != FACT_KEY],
    description="Great Expectations suites (expectations/gx) on the marts: keys, ranges by "
    "unit, numerator <= denominator, every month present, row counts against raw. Blocking: a "
    "failure stops the run before publication. If it fails: the failures table names each "
    "table, expectation and column; the run's Data Docs (var/quality/<run id>/data_docs) "
    "show the failing values. Correct the source return (or the model) and rerun the months.",
)
def gx_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from pipelines.quality.gx_audit import run_expectations  # GX imports slowly: only here

    settings = load_settings()
    out = quality_dir(context.run.run_id)
    months = _run_months(context.run.tags)
    result = run_expectations(settings.working_db, data_docs_dir=out / "data_docs", periods=months)
    release_memory()  # GX's frames and cycles, before SPC runs in this process
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.results, indent=1, default=str))
    failures = result.failures
    return dg.AssetCheckResult(
        passed=result.passed,
        metadata=gx_metadata(result.results, failures, months),
    )


defs = dg.Definitions(asset_checks=[gx_expectations])
