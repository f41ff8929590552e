"""Process memory: resident set size for figures, and handing freed heap back to the OS.

glibc keeps the arenas an unloaded ONNX session freed; without a trim, RSS grows by
several MB per load/unload cycle although nothing is alive (measured here: +39 MB
over 22 cycles of the classifier, flat with a trim).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trim_heap() -> None:
    """Collect garbage cycles (an unloaded model and its batcher form one), then return
    free heap pages to the OS (glibc malloc_trim; a no-op elsewhere)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
