"""Runs that died: found, marked failed with the reason, and their writer slot freed.

A run killed with ``kill -9`` (or stopped by a full disk, an out-of-memory kill, a lost
machine) never writes its own end: Dagster keeps it ``STARTED`` and keeps the slot of the
``duckdb_writer`` pool its running step had claimed, so every later run waits for that
slot forever. The whole-run lock (:func:`pipelines.warehouse.whole_run_lock`) is an
``flock`` the operating system releases when the process dies, so it never stalls; the
Dagster run record and the pool slot are what must be cleaned up.

Every run that writes the working file tags itself with its process id and host when it
starts (:class:`pipelines.defs.resources.WorkingFileRun`). Before launching a run, the
command line (:func:`fail_dead_runs`) looks at every run its instance still has as
started: one whose process is gone from this host (or whose pid now belongs to a process
that started after the run did) is marked failed with the reason, its pool slots are
freed, and its failure is recorded in ``audit.publication_log`` like any other run that
stopped before publishing. Runs started elsewhere, or that have not yet tagged themselves,
are left alone: their liveness cannot be judged from here.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

PID_TAG = "safety_observatory/pid"
HOST_TAG = "safety_observatory/host"
# Runs still running as far as the instance knows. A queued or starting run has not
# tagged itself yet; the daemon's run monitoring times those out (config/dagster.yaml).
_RUNNING = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """The tags a run adds to itself when it starts: who is running it."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from ``/proc`` (None where there is
    no ``/proc``, or the process is gone)."""
    boot = _boot_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if boot is None:
        return None
    # Field 22 (starttime, in clock ticks since boot) counts from after the command name,
    # which is in parentheses and may itself hold spaces.
    fields = stat.rsplit(")", 1)[1].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_state(pid: int) -> str | None:
    """The state letter ``/proc/<pid>/stat`` gives (``R``, ``S``, ``D``, ``Z`` for a zombie,
    ...), or None where there is no ``/proc`` or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] if fields else None


def process_alive(pid: int, *, not_started_after: float | None = None) -> bool:
    """Whether ``pid`` is still the process that started a run at ``not_started_after``.

    A pid is reused once its process has died; a process that started after the run did
    cannot be the run's (two seconds of slack for clock granularity)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    if process_state(pid) in ("Z", "X"):
        # Killed but not yet reaped (its parent, the command line, was killed with it, and
        # whoever inherits it has not waited for it yet): it runs nothing any more, so its
        # run is dead. A run started a second after ``kill -9`` met exactly this.
        return False
    if not_started_after is not None:
        started = process_start_time(pid)
        if started is not None and started > not_started_after + 2:
            return False
    return True


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    pid: int
    host: str
    started_at: float | None

    @property
    def reason(self) -> str:
        since = (
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
            if self.started_at
            else "an unknown time"
        )
        return (
            f"run {self.run_id} ({self.job_name}, started {since}) died without finishing: "
            f"its process (pid {self.pid} on {self.host}) is gone (killed, out of memory or "
            "the machine stopped); marked failed and its writer slot freed so later runs "
            "do not wait for it; the last good publication is unchanged"
        )


def dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Runs the instance has as running whose process is gone from this host."""
    host = socket.gethostname()
    found = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_RUNNING)):
        run = record.dagster_run
        pid_text, run_host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid_text or not pid_text.isdigit() or run_host != host:
            continue  # not tagged yet, or running on another machine: cannot judge
        pid = int(pid_text)
        if pid == os.getpid():
            continue
        if not process_alive(pid, not_started_after=record.start_time):
            found.append(DeadRun(run.run_id, run.job_name, pid, run_host, record.start_time))
    return found


def fail_dead_runs(
    instance: dg.DagsterInstance,
    *,
    record_refusal: Callable[[dg.DagsterInstance, str, list[str]], object] | None = None,
) -> list[DeadRun]:
    """Mark every dead run failed with its reason and free its concurrency slots;
    ``record_refusal(instance, run_id, reasons)`` logs it as a refused publication."""
    dead = dead_runs(instance)
    for run in dead:
        dagster_run = instance.get_run_by_id(run.run_id)
        if dagster_run is None or dagster_run.is_finished:
            continue
        instance.report_run_failed(dagster_run, run.reason)
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        if record_refusal is not None:
            record_refusal(instance, run.run_id, [run.reason])
    return dead
