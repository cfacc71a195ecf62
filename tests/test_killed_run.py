"""``kill -9`` in the middle of ``make demo`` never stalls the next run: the operating
system releases the whole-run lock, and the next command-line run finds the dead run
still STARTED, marks it failed with the reason, frees the writer slot it held, records it
in the publication log, then runs to the end and publishes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from conftest import start_demo

pytestmark = pytest.mark.e2e


def wait_for_step(logs: Path, step: str, process: subprocess.Popen, timeout: float) -> str:
    """The run id, once its full log shows ``step`` started."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf" - ([0-9a-f-]{{36}}) - \d+ - {step} - STEP_START - ")
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        for log in logs.glob("*.log"):
            found = pattern.search(log.read_text(errors="replace"))
            if found:
                return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"{step} never started")


def test_a_killed_demo_does_not_block_the_next(tmp_path):
    root = tmp_path
    first = start_demo(root, start_new_session=True)
    killed_run = wait_for_step(root / "var" / "logs", "period_models", first, timeout=900)
    # The whole process group: the command line and the Dagster process running the run.
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL

    home = root / "var" / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.STARTED
        pool = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        assert [s.run_id for s in pool.claimed_slots] == [killed_run], "the slot is still held"

    second = start_demo(root)
    out, err = second.communicate(timeout=1800)
    assert second.returncode == 0, err[-3000:]
    assert f"Cleared a run that died: run {killed_run} (full_pipeline" in out
    assert "Safety Observatory: published" in out
    new_run = re.search(r"Run ([0-9a-f-]{36}) succeeded", err).group(1)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        killed = instance.get_run_by_id(killed_run)
        assert killed.status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(new_run).status == dg.DagsterRunStatus.SUCCESS
    working = root / "var" / "warehouse" / "working.duckdb"
    with duckdb.connect(str(working), read_only=True) as con:
        log = con.execute(
            "select run_id, status, reasons from audit.publication_log order by attempted_at"
        ).fetchall()
    assert [(run_id, status) for run_id, status, _ in log] == [
        (killed_run, "refused"),
        (new_run, "published"),
    ]
    [reason] = log[0][2]
    assert "died without finishing: its process (pid" in reason
    assert (root / "var" / "published" / "current" / "manifest.json").exists()


def test_a_killed_process_not_yet_reaped_is_not_alive():
    """A zombie (exited, its parent not having waited for it) still answers ``kill(pid,
    0)``, but runs nothing: the run it started is dead, and its writer slot can be freed."""
    from pipelines.run_health import process_alive, process_state

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert process_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_state(child.pid) == "Z"
        os.kill(child.pid, 0)  # still there for the kernel
        assert not process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
