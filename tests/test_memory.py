"""release_memory(): what a finished step left in reference cycles goes back to the
operating system before the next step of the same process (pipelines/memory.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from pipelines.memory import release_memory


def _rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_memory_held_in_reference_cycles_is_released():
    """300 MB held only by objects that refer to each other, as GX's leave pandas frames:
    dropped, they stay until a collection; release_memory() returns them."""
    enabled = gc.isenabled()
    gc.disable()  # as between two automatic collections
    try:
        nodes = []
        for _ in range(300):
            node: dict = {"payload": bytearray(1 << 20)}
            node["self"] = node
            nodes.append(node)
        del node
        nodes.clear()
        held = _rss_mib()
        release_memory()
        assert held - _rss_mib() >= 250
    finally:
        if enabled:
            gc.enable()
