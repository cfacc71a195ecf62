"""Dead runs under the daemon: a sensor that does what the command line does before each
run (:func:`pipelines.run_health.fail_dead_runs`).

Dagster's run monitoring (``config/dagster.yaml``) checks a started run's worker only when
the run launcher can (``supports_check_run_worker_health``); the default launcher, which
``make ui`` and a plain ``dagster-daemon`` use, cannot. A run the daemon launched (the
nightly schedule, the landing sensor, the UI) whose process is killed would stay
``STARTED``, hold the ``duckdb_writer`` slot and the one run slot of runs that write the
working file, and every queued run would wait for it. Once a minute this sensor marks
such runs failed with the reason, frees their slots and logs them as refused.
"""

import dagster as dg

from pipelines.defs.publish import log_refused_run
from pipelines.run_health import fail_dead_runs


def _record_refusal(instance: dg.DagsterInstance, run_id: str, reasons: list[str]) -> None:
    log_refused_run(instance, run_id, reasons)


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run whose process died (kill -9, out of memory) is marked failed with "
    "the reason and its writer slot freed, so queued runs do not wait for it forever.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    dead = fail_dead_runs(context.instance, record_refusal=_record_refusal)
    for run in dead:
        context.log.warning(run.reason)
    if not dead:
        return dg.SkipReason("no run has died")
    return dg.SkipReason(
        f"marked {len(dead)} dead run(s) failed: {', '.join(r.run_id for r in dead)}"
    )


defs = dg.Definitions(sensors=[dead_run_sensor])
