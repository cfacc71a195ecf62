"""Resources shared by the assets that write the working file."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pipelines.settings import load_settings
from pipelines.warehouse import whole_run_lock


class WorkingFileRun(dg.ConfigurableResource):
    """Holds the working file for the whole run (:func:`pipelines.warehouse.whole_run_lock`).

    Every asset that writes the working file requires this resource. Runs execute in one
    process (the in-process executor), where Dagster initialises a run's resources once
    before its first step and tears them down after its last, so the lock spans ingest,
    dbt, checks and publish: a second run started meanwhile (the CLI, a sensor, a
    schedule, the UI) waits for it instead of interleaving its steps. The run also claims
    the build as its own; publish refuses if anyone else claimed it since.
    """

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["WorkingFileRun"]:
        settings = load_settings()
        with whole_run_lock(settings.working_db, context.run_id, on_wait=context.log.info):
            yield self


defs = dg.Definitions(resources={"working_file_run": WorkingFileRun()})
