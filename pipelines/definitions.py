"""Entry point for `dagster dev` / `dagster job execute` (see workspace.yaml).

Each capability's definitions live in their own module under ``pipelines/defs``; this file
only merges them and declares the jobs users run.
"""

from __future__ import annotations

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from pipelines.defs import dbt, ingest, publish

    full_pipeline = dg.define_asset_job(
        "full_pipeline",
        selection=dg.AssetSelection.all(),
        description=(
            "Ingest new files, rebuild and test the warehouse, publish if every check passed."
        ),
    )
    # One process per run: DuckDB has a single writer, so steps gain nothing from their own
    # processes and each would pay the import cost again.
    return dg.Definitions.merge(
        ingest.defs,
        dbt.defs,
        publish.defs,
        dg.Definitions(jobs=[full_pipeline], executor=dg.in_process_executor),
    )
