"""Keep freed memory in the process, so a batch's tensors do not fault in fresh pages.

glibc hands memory back to the kernel as soon as more than its trim threshold lies free at
the top of the heap, and serves allocations above its mmap threshold with fresh mappings.
Both thresholds start at 128 KiB. A forward pass of 24-64 images allocates and frees
activations of 1-6 MB, so every pass paid for page faults and zeroed pages: one thread ran
the shipped network at 150-190 us an image at batch 32-64, and at 104-106 us with these
thresholds fixed (the same process history as a served worker; docs/performance.md).
Setting only one of the two does not do it: either alone keeps the other small.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("convlens")

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
# allocations above this (a decoded photo) still get their own mapping, given back on free;
# 32 MiB is the largest value glibc accepts on 64-bit
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024  # free memory kept at the top of each heap


def glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc: musl's mallopt is a stub that does nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds for this process; False without glibc
    (musl, macOS), which leaves the allocator as it was."""
    libc = glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not ok:
        log.warning("mallopt refused the allocator thresholds; keeping glibc's defaults")
    return ok
