"""One validation task holds the same blocks, on the same threads, in the same
allocator whatever machine runs it (include/music_kpis/task_memory.py): the
memory bound of an MWAA slot must not depend on the worker's core count."""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from include.music_kpis import transform
from include.music_kpis.files import RawFile
from include.music_kpis.outcomes import LOADED
from include.music_kpis.task_memory import BLOCKS_IN_FLIGHT, VALIDATION_THREADS, arrow_pool
from localdev.folder_store import FolderStore

ROWS = 20_000


@pytest.fixture
def many_cores(monkeypatch: pytest.MonkeyPatch):
    """The process believes it runs on 64 cores, pyarrow's thread pools sized to match."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    cpu, io = pa.cpu_count(), pa.io_thread_count()
    pa.set_cpu_count(64)
    pa.set_io_thread_count(64)
    yield
    pa.set_cpu_count(cpu)
    pa.set_io_thread_count(io)


def test_blocks_threads_and_pool_do_not_follow_the_core_count(
    many_cores: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, most_held, threads, pools = [0], [0], set(), set()
    lock = threading.Lock()
    read_batches, validate_chunk, add = transform.read_batches, transform.validate_chunk, transform._Outputs.add

    def counted_batches(*args, **kwargs):
        for batch in read_batches(*args, **kwargs):
            with lock:
                held[0] += 1
                most_held[0] = max(most_held[0], held[0])
            yield batch

    def slow_validation(*args, **kwargs):
        time.sleep(0.01)  # validation slower than reading: the reader would run ahead
        threads.add(threading.current_thread().name)
        pools.add(pa.default_memory_pool().backend_name)
        return validate_chunk(*args, **kwargs)

    def counted_add(self, result) -> None:
        with lock:
            held[0] -= 1
        add(self, result)

    monkeypatch.setattr(transform, "read_batches", counted_batches)
    monkeypatch.setattr(transform, "validate_chunk", slow_validation)
    monkeypatch.setattr(transform._Outputs, "add", counted_add)
    # An environment that asks for another allocator does not change the task's.
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        csv = tmp_path / "streams.csv"
        csv.write_text(
            "user_id,track_id,listen_time\n"
            + "".join(f"{i},t{i % 97},2024-01-01 10:{i % 60:02d}:00\n" for i in range(1, ROWS + 1)),
            encoding="utf-8",
        )
        outcome = transform.transform_file(
            RawFile("streams", "streams/s.csv", "etag"),
            partial(csv.open, "rb"),
            FolderStore(tmp_path / "out"),
            reject_threshold=0.05,
            block_bytes=4096,
        )
        assert pa.default_memory_pool().backend_name == "system"  # restored after the file
    finally:
        pa.set_memory_pool(before)

    assert (outcome.outcome, outcome.rows_read) == (LOADED, ROWS)
    assert most_held[0] == BLOCKS_IN_FLIGHT  # reached, never passed, with ~100 blocks to read
    assert len(threads) == VALIDATION_THREADS
    assert pools == {arrow_pool().backend_name}


def test_arrow_pool_is_jemalloc_where_built_in() -> None:
    assert arrow_pool().backend_name in {"mimalloc", "jemalloc", "system"}
    if "jemalloc" in pa.supported_memory_backends():
        assert arrow_pool().backend_name == "jemalloc"
