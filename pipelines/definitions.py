"""Entry point for `dagster dev` / `dagster job execute` (see workspace.yaml).

Each capability's definitions live in their own module under ``pipelines/defs``; this file
only merges them.
"""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # Imported here so that loading the code location stays cheap until Dagster asks.
    from pipelines.defs import (
        automation,
        completeness,
        dbt,
        incidents,
        ingest,
        publish,
        quality,
        resources,
        run_health,
        spc,
        surveys,
    )
    from pipelines.defs.run_logging import LOGGERS

    # One process per run (automation.defs sets the in-process executor): DuckDB has a
    # single writer, so steps gain nothing from their own processes and each would pay the
    # import cost again.
    return dg.Definitions.merge(
        ingest.defs,
        surveys.defs,
        incidents.defs,
        dbt.defs,
        spc.defs,
        quality.defs,
        completeness.defs,
        publish.defs,
        automation.defs,
        resources.defs,
        run_health.defs,
        # Used when a run's config selects them (the CLI does); otherwise Dagster's own.
        dg.Definitions(loggers=LOGGERS),
    )
