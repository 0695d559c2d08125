"""The local COPY path streams chunks made on a thread ahead of COPY (include/music_kpis/operators.py):
the reader gets every byte in order, an empty chunk does not end the stream, and a failure while
making a chunk reaches the reader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from include.music_kpis.operators import _ahead, _ChunkStream

CHUNKS = [b"PGCOPY", b"", b"row one", memoryview(b"row two"), b"", b"end"]


def test_the_reader_gets_every_chunk_in_order_across_empty_ones() -> None:
    stream = _ChunkStream(_ahead(iter(CHUNKS)))
    read = b"".join(iter(lambda: stream.read(3), b""))
    assert read == b"".join(bytes(chunk) for chunk in CHUNKS)


def test_a_failure_while_making_a_chunk_reaches_the_reader() -> None:
    def failing() -> Iterator[bytes]:
        yield b"PGCOPY"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        _ChunkStream(_ahead(failing())).read()
