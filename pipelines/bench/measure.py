"""Run one benchmark stage as a child process and measure what its whole process tree used.

Why a child process per stage: docs/design.md §10 caps peak memory, and a Python process never
gives memory back reliably, so measuring stages inside one long-lived process would charge
each stage with the last one's heap. Each stage therefore runs in its own process:

* ``os.wait4`` returns the kernel's accounting for that child *and every descendant it
  reaped* (user and system CPU, and ``ru_maxrss``: the largest resident set of any single
  process in the tree, e.g. the dbt subprocess Dagster starts). Exact, no sampling.
* a sampler thread reads ``/proc`` every ``interval`` seconds and sums the resident memory
  and CPU time of the live tree. The sum catches what ``ru_maxrss`` cannot (two processes
  resident at once: Dagster holding frames while dbt runs), and the time series lets us
  charge CPU and memory to each Dagster step by its start and end time. psutil is not a
  dependency of the project, and /proc gives the same figures on Linux.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass
class Sample:
    at: float  # epoch seconds
    cpu_s: float  # cumulative CPU of the live tree, including reaped descendants
    rss_mib: float  # resident memory of the live tree, summed over processes


@dataclass
class Usage:
    """What one stage's process tree used."""

    command: list[str]
    returncode: int
    started_at: float
    ended_at: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_mib: float  # largest single process (kernel, exact)
    peak_tree_rss_mib: float  # largest sampled sum over the live tree
    samples: list[Sample] = field(default_factory=list, repr=False)

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def peak_memory_mib(self) -> float:
        """The figure to hold against the memory target: the larger of the two views."""
        return max(self.peak_rss_mib, self.peak_tree_rss_mib)

    def summary(self) -> dict[str, float | int]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "cpu_user_s": round(self.cpu_user_s, 3),
            "cpu_sys_s": round(self.cpu_sys_s, 3),
            "peak_memory_mib": round(self.peak_memory_mib, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "peak_tree_rss_mib": round(self.peak_tree_rss_mib, 1),
            "returncode": self.returncode,
        }

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU and peak tree memory between two instants (a Dagster step), from samples."""
        before = [s for s in self.samples if s.at <= start]
        upto = [s for s in self.samples if s.at <= end]
        inside = [s.rss_mib for s in self.samples if start <= s.at <= end]
        cpu0 = before[-1].cpu_s if before else 0.0
        cpu1 = upto[-1].cpu_s if upto else cpu0
        if not inside and upto:  # a step shorter than the sampling interval
            inside = [upto[-1].rss_mib]
        return {
            "cpu_s": round(max(0.0, cpu1 - cpu0), 3),
            "peak_tree_rss_mib": round(max(inside, default=0.0), 1),
        }


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent pid, CPU seconds incl. reaped children, resident MiB)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces
        if len(rest) < 22:
            continue
        ticks = sum(int(v) for v in rest[11:15])  # utime, stime, cutime, cstime
        table[int(entry.name)] = (int(rest[1]), ticks / _TICKS, int(rest[21]) * _PAGE / MIB)
    return table


def tree_sample(root: int) -> Sample | None:
    """CPU and resident memory of ``root`` and all its live descendants, now."""
    table = _proc_table()
    if root not in table:
        return None
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    cpu = rss = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        _, pid_cpu, pid_rss = table[pid]
        cpu += pid_cpu
        rss += pid_rss
        todo.extend(children.get(pid, []))
    return Sample(time.time(), cpu, rss)


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    interval: float = 0.1,
) -> Usage:
    """Run ``command`` to completion; its output goes to ``log`` (or is discarded)."""
    log_handle = log.open("wb") if log else subprocess.DEVNULL
    samples: list[Sample] = []
    done = threading.Event()
    try:
        started = time.time()
        proc = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )

        def sample() -> None:
            while not done.is_set():
                point = tree_sample(proc.pid)
                if point is not None:
                    samples.append(point)
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, rusage = os.wait4(proc.pid, 0)
        ended = time.time()
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if not isinstance(log_handle, int):  # subprocess.DEVNULL is an int
            log_handle.close()
    return Usage(
        command=list(command),
        returncode=proc.returncode,
        started_at=started,
        ended_at=ended,
        cpu_user_s=rusage.ru_utime,
        cpu_sys_s=rusage.ru_stime,
        peak_rss_mib=rusage.ru_maxrss / 1024,  # Linux reports KiB
        peak_tree_rss_mib=max((s.rss_mib for s in samples), default=0.0),
        samples=samples,
    )
