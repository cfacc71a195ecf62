"""Resources shared by the assets that write the working file."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pipelines.run_health import process_tags
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

    Before anything else the run tags itself with its process id and host
    (:func:`pipelines.run_health.process_tags`): if the process dies without ending the
    run (``kill -9``), the next command-line run can tell that it is gone and mark it
    failed, freeing the writer slot it held (:func:`pipelines.run_health.fail_dead_runs`).
    """

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["WorkingFileRun"]:
        settings = load_settings()
        if context.run is None or context.instance is None or context.log is None:
            raise RuntimeError("WorkingFileRun is a run's resource: it needs the run")
        run_id = context.run.run_id
        context.instance.add_run_tags(run_id, process_tags())
        with whole_run_lock(settings.working_db, run_id, on_wait=context.log.info):
            yield self


defs = dg.Definitions(resources={"working_file_run": WorkingFileRun()})
