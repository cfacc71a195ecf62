"""A run whose process died is found, marked failed with the reason, and its writer slot
freed; a live run, a run on another machine and a run not yet tagged are left alone.
(The end-to-end version, a ``kill -9`` of ``make demo`` followed by another demo, is in
``test_killed_run.py``.)"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.test_utils import create_run_for_test

from pipelines.run_health import HOST_TAG, PID_TAG, fail_dead_runs, process_alive

POOL = "duckdb_writer"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


def started_run(instance: dg.DagsterInstance, pid: int, host: str | None = None) -> str:
    """A full_pipeline run as the instance sees it mid-step: STARTED, tagged with its
    process, holding the writer pool's only slot."""
    tags = {PID_TAG: str(pid), HOST_TAG: host or socket.gethostname()}
    run = create_run_for_test(
        instance, job_name="full_pipeline", status=dg.DagsterRunStatus.NOT_STARTED, tags=tags
    )
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name="full_pipeline"),
        run_id=run.run_id,
    )
    return run.run_id


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def slot_holders(instance: dg.DagsterInstance) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def test_a_dead_run_is_failed_with_its_reason_and_its_slot_freed(instance):
    pid = dead_pid()
    run_id = started_run(instance, pid)
    instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "period_models")
    assert slot_holders(instance) == [run_id]
    logged: list[tuple[str, list[str]]] = []

    [dead] = fail_dead_runs(instance, record_refusal=lambda _, rid, why: logged.append((rid, why)))

    assert dead.run_id == run_id
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert slot_holders(instance) == []
    [(logged_run, [reason])] = logged
    assert logged_run == run_id
    assert f"its process (pid {pid} on {socket.gethostname()}) is gone" in reason
    assert "writer slot freed" in reason
    failure = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
    assert [r.event_log_entry.message for r in failure] == [reason]
    # A second look finds nothing more to do.
    assert fail_dead_runs(instance) == []


def test_live_unjudgeable_and_untagged_runs_are_left_alone(instance):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = started_run(instance, sleeper.pid)
        elsewhere = started_run(instance, dead_pid(), host="another-machine")
        untagged = create_run_for_test(
            instance, job_name="full_pipeline", status=dg.DagsterRunStatus.STARTED
        ).run_id
        assert fail_dead_runs(instance) == []
        for run_id in (alive, elsewhere, untagged):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_reused_pid_is_not_taken_for_the_run():
    """After a crash the pid may belong to a newer, unrelated process: one that started
    after the run did is not the run's."""
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(newer.pid)
        assert not process_alive(newer.pid, not_started_after=time.time() - 3600)
    finally:
        newer.kill()
        newer.wait()
    assert not process_alive(newer.pid)


def test_the_daemon_sensor_clears_a_dead_run_and_logs_it(instance, settings):
    """Runs the daemon launched (schedule, landing sensor, UI) have no command line to
    clear them: the dead-run sensor does it every minute, and the publication log says
    why the run never published."""
    import duckdb

    from pipelines.defs.run_health import dead_run_sensor

    run_id = started_run(instance, dead_pid())
    instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "measure_returns")

    result = dead_run_sensor(dg.build_sensor_context(instance=instance))

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"marked 1 dead run(s) failed: {run_id}"
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert slot_holders(instance) == []
    with duckdb.connect(str(settings.working_db), read_only=True) as con:
        [(status, reasons)] = con.execute(
            "select status, reasons from audit.publication_log where run_id = ?", [run_id]
        ).fetchall()
    assert status == "refused"
    assert len(reasons) == 1 and "died without finishing" in reasons[0]
    assert dead_run_sensor(dg.build_sensor_context(instance=instance)).skip_message == (
        "no run has died"
    )
