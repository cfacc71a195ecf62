"""Give memory a finished step freed back to the operating system.

Why: a run's steps share one process (the in-process executor), so the process's peak is
one step's need plus whatever the steps before it still hold. Great Expectations leaves
reference cycles (pandas frames of up to 2 million fact rows among them) that Python's
collector frees only when it next runs a full collection, and glibc keeps freed heap
pages mapped for reuse. At SCALE=5 the process entered ``spc_points`` holding about
1.4 GB after the GX check, and SPC's own 4.5 GB on top came to 5,930 MiB, over the 6 GB
target; collected and trimmed, the same GX run leaves 496 MiB (docs/benchmark.md,
"SCALE=5 with SPC streaming (02578bd)").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_memory() -> None:
    """Collect every generation of Python objects, then ask glibc to return free heap to
    the operating system (``malloc_trim``; elsewhere, where there is no such call, the
    collection alone)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return
    trim(0)
