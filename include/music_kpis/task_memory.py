"""What bounds the memory of one validation task, pinned in code.

A task gets a slot's share of its worker's memory (on MWAA an mw1.small
worker has 2 GB for 5 concurrent tasks), not a core's, so nothing here scales
with the machine: the number of validation threads and of blocks in flight are
constants, and the allocators are chosen and configured here rather than left
to the build's or the environment's defaults (ARROW_DEFAULT_MEMORY_POOL,
MALLOC_ARENA_MAX, ...). On a machine with more cores the task then holds the
same blocks, in the same allocator, as on a small one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pyarrow as pa

# Blocks validated at once; pyarrow compute releases the GIL, so two threads
# keep the reader and the writers busy without holding more blocks.
VALIDATION_THREADS = 2
# Blocks read but not yet handed to the writers: one being read plus one per thread.
BLOCKS_IN_FLIGHT = VALIDATION_THREADS + 1
# Parts of one S3 upload sent at once (boto3's default is 10). Uploads read the
# file from disk as they send, so this bounds connections and threads more than
# memory; a few keep one large part's upload well ahead of the next part.
UPLOAD_THREADS = 4

# glibc malloc (Python objects, numpy's arrays, and the bytes objects the raw
# stream is read into): without these, it raises its mmap threshold as large
# blocks are freed, after which every 4 MB read block comes from a heap that
# keeps it, and it grows one heap per thread (up to 8 per core). The threshold
# sits below a read block and above a block's numpy arrays (about 1 MB for
# 8 bytes a row): at 256 KB each of those was mapped and faulted in anew, which
# cost the validation of a 5M-row file 0.3 s of kernel time (peak RSS on the
# 1.9 GB file: 346 MB then, 357 MB now).
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
_GLIBC_ARENAS = 2
_GLIBC_MMAP_THRESHOLD = 2 << 20
# How long jemalloc keeps freed pages for reuse before it returns them: 500 ms kept
# the peak on the 1.9 GB file at 346 MB (Arrow's 1000 ms: 367 MB; 0: 300 MB, but a
# third slower, every page faulted in again).
JEMALLOC_DECAY_MS = 500


@cache
def _configure_glibc_malloc() -> bool:
    """Once per process; False where the C library is not glibc (nothing to do)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success; musl and others lack it or ignore it.
    return bool(mallopt(_M_ARENA_MAX, _GLIBC_ARENAS)) and bool(mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_THRESHOLD))


def arrow_pool() -> pa.MemoryPool:
    """jemalloc, with its decay pinned; else mimalloc (pyarrow's default); else the system allocator.

    Not mimalloc first: it backs its pages with transparent huge pages, and a
    block's memory, handed back after the block, is faulted in again for the next
    one as 2 MB pages zeroed (and, where the kernel compacts memory for them, moved)
    on the task's time. With jemalloc the validation of a 5M-row file spent 0.8-1.0 s
    in the kernel instead of 1.0-1.6 s."""
    try:
        # Before the pool's first allocation: jemalloc's arenas take the decay when made.
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # not in this build
        pass
    try:
        return pa.mimalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


def release_thread_memory() -> None:
    """Hand freed Arrow memory back to the OS, after each block and row group.

    jemalloc purges every arena's unused pages (mimalloc, where it is the pool,
    only the calling thread's heap: each thread calls this after its block)."""
    pa.default_memory_pool().release_unused()


@contextmanager
def bounded_memory() -> Iterator[pa.MemoryPool]:
    """For the duration of one file: the pinned Arrow pool as pyarrow's default, glibc malloc configured."""
    _configure_glibc_malloc()
    previous = pa.default_memory_pool()
    pool = arrow_pool()
    pa.set_memory_pool(pool)
    try:
        yield pool
    finally:
        pool.release_unused()
        pa.set_memory_pool(previous)
