"""Hold the working file as a run's step does, in another process: what the sensor tests
need to prove a tick skips quickly instead of waiting for (or failing on) a busy writer.

The holder takes the pipeline's writer lock (``<db>.lock``) and opens the DuckDB file for
writing, then sleeps; the block runs while it holds both, and the holder is killed when the
block ends. A separate process because DuckDB's file lock is per process: a connection in
the test's own process would not block the sensor's read-only open.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD_THE_WORKING_FILE = textwrap.dedent(
    """
    import fcntl, os, sys, time
    import duckdb
    db = sys.argv[1]
    fd = os.open(db + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    con = duckdb.connect(db)  # open for writing, as a run's step holds it
    print("holding", flush=True)
    time.sleep(120)
    """
)


@contextmanager
def holding_the_working_file(working_db: Path) -> Iterator[None]:
    """Another process holds ``working_db`` (writer lock and a write connection) for the
    block; the block starts only once it says it holds both."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WORKING_FILE, str(working_db)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding", "the holder did not start"
        yield
    finally:
        holder.kill()
        holder.wait()
