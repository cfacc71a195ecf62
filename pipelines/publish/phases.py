"""Where a publication's time goes, phase by phase.

``published_snapshot`` is the longest step of a one-file run at national scale (most of
(c) in docs/benchmark.md), and one step time says nothing about which of its parts
(the tiers' tables and exports, board reports, sites, the disclosure audit, checksums) to
work on. Each phase's wall and CPU seconds go into the step's Dagster metadata and log,
and ``make bench`` prints them under the step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

#: The ``published_snapshot`` metadata entry that holds :attr:`Phases.seconds`.
PHASES_METADATA = "phases"


class Phases:
    """Wall and CPU seconds of named phases, in the order they started. A phase timed twice
    adds up; CPU is this process's (DuckDB's threads included, a report worker process
    not)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            spent = self.seconds.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
            spent["wall_s"] = round(spent["wall_s"] + time.perf_counter() - wall, 3)
            spent["cpu_s"] = round(spent["cpu_s"] + time.process_time() - cpu, 3)

    def lines(self) -> list[str]:
        """One line per phase, for the step's log."""
        return [
            f"{name}: {spent['wall_s']:.1f} s wall, {spent['cpu_s']:.1f} s CPU"
            for name, spent in self.seconds.items()
        ]
