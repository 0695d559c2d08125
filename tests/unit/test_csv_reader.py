"""A raw file is read to its end or not at all (include/music_kpis/csv_reader.py), and
the transform reads it again when pyarrow stops early (include/music_kpis/transform.py).

pyarrow's streaming CSV reader sometimes ends its batches without raising the
error a block hit: a row longer than a block was then dropped with no error
(tests/integration/test_processing.py::test_a_row_longer_than_a_block_is_read_with_larger_blocks
failed that way in CI, and later test_blocks_grow_no_larger_than_the_limit, where
pyarrow had read the whole file). These tests make pyarrow stop early on purpose.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from include.music_kpis import csv_reader, transform
from include.music_kpis.csv_reader import ReadStoppedEarly, csv_stream, read_batches
from include.music_kpis.files import RawFile
from include.music_kpis.outcomes import LOADED, REJECTED
from localdev.folder_store import FolderStore

COLUMNS = ["user_id", "track_id", "listen_time"]
HEADER = ",".join(COLUMNS) + "\n"
BLOCK = 4096


def _plays(rows: int, newline: str = "\n") -> bytes:
    lines = [HEADER.strip(), *(f"{i},t{i},2024-01-01 10:00:00" for i in range(1, rows + 1))]
    return (newline.join(lines) + newline).encode()


def _opener(body: bytes):
    return csv_stream(lambda: closing(io.BytesIO(body)), "streams/plays.csv")


class _EndsEarly:
    """pyarrow's reader, ending after its first batch without an error: what pyarrow
    does when it loses a block's error."""

    def __init__(self, reader: pacsv.CSVStreamingReader) -> None:
        self.reader = reader

    @property
    def schema(self):
        return self.reader.schema

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self.reader, 1)


class _EndsAtEndOfFile(_EndsEarly):
    """pyarrow's reader, ending after its first batch without an error once it has read
    the whole file: the same lost error, when the file is no longer than pyarrow reads ahead."""

    def __init__(self, reader: pacsv.CSVStreamingReader, stream: Any) -> None:
        super().__init__(reader)
        self.stream = stream

    def __iter__(self) -> Iterator[Any]:
        yield from itertools.islice(self.reader, 1)
        while self.stream.read(-1):
            pass


@pytest.fixture
def pyarrow_ends_at_end_of_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of a file's rows ends after its first batch, with the file read to its end."""
    open_csv = pacsv.open_csv
    monkeypatch.setattr(csv_reader._PacedStream, "READ_AHEAD", 1 << 10)  # no pacing: read ahead at once

    def open_ending_at_end(stream: Any, **kwargs: Any):
        return _EndsAtEndOfFile(open_csv(stream, **kwargs), stream)

    monkeypatch.setattr(csv_reader.pacsv, "open_csv", open_ending_at_end)


@pytest.fixture
def pyarrow_ends_early(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next read of a file's rows ends after its first batch; returns the block sizes of every read."""
    open_csv, block_sizes = pacsv.open_csv, []

    def open_ending_early(*args: Any, **kwargs: Any):
        reader = open_csv(*args, **kwargs)
        if kwargs["read_options"].column_names:  # reads the rows, not only the header
            block_sizes.append(kwargs["read_options"].block_size)
            if len(block_sizes) == 1:
                return _EndsEarly(reader)
        return reader

    monkeypatch.setattr(csv_reader.pacsv, "open_csv", open_ending_early)
    return block_sizes


def test_a_reader_that_ends_before_the_file_is_an_error(pyarrow_ends_early: list[int]) -> None:
    with pytest.raises(ReadStoppedEarly, match="before the end of the file"):
        sum(batch.table.num_rows for batch in read_batches(_opener(_plays(2_000)), COLUMNS, BLOCK))


@pytest.mark.usefixtures("pyarrow_ends_at_end_of_file")
def test_a_reader_that_ends_at_the_end_of_the_file_with_blocks_left_unparsed_is_an_error() -> None:
    with pytest.raises(ReadStoppedEarly, match=r"gave 1 batch\(es\) for the \d+ blocks"):
        list(read_batches(_opener(_plays(2_000)), COLUMNS, BLOCK))


@pytest.mark.parametrize("leading", ["", "\n" * (2 * BLOCK)], ids=["rows", "blank lines first"])
def test_each_block_read_gives_a_batch(leading: str) -> None:
    # What proves a read whole: blank lines fill the first two blocks, and the header,
    # read as a row of the first block, still makes it give a batch.
    body = HEADER.encode() + leading.encode() + _plays(2_000)[len(HEADER) :]
    batches = list(read_batches(_opener(body), COLUMNS, BLOCK))
    assert sum(batch.table.num_rows for batch in batches) == 2_000
    assert next(batch for batch in batches if batch.table.num_rows).source_rows[0] == 1
    assert len(batches) >= -(-len(body) // BLOCK)


def test_a_file_read_to_its_end_is_not_an_error() -> None:
    # The last CRLF split by the last block boundary: pyarrow may finish without an empty read.
    body = _plays(400, newline="\r\n")
    body = body[:-2] + b"x" * (3 * BLOCK - 1 - len(body) + 2) + b"\r\n"
    assert body[3 * BLOCK - 1 : 3 * BLOCK + 1] == b"\r\n" and len(body) == 3 * BLOCK + 1
    batches = list(read_batches(_opener(body), COLUMNS, BLOCK))
    assert sum(batch.table.num_rows for batch in batches) == 400


def test_a_stream_error_is_raised_as_itself() -> None:
    class Dropped(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self.body = io.BytesIO(_plays(2_000))

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.body.tell() >= 3 * BLOCK:
                raise ConnectionResetError("connection reset by peer")
            return self.body.readinto(buffer)

    opener = csv_stream(lambda: closing(Dropped()), "streams/plays.csv")
    with pytest.raises(ConnectionResetError):
        list(read_batches(opener, COLUMNS, BLOCK))


def _transform(tmp_path: Path, body: bytes):
    csv = tmp_path / "plays.csv"
    csv.write_bytes(body)
    return transform.transform_file(
        RawFile("streams", "streams/plays.csv", "etag"),
        partial(csv.open, "rb"),
        FolderStore(tmp_path / "processed"),
        reject_threshold=0.05,
        block_bytes=BLOCK,
    )


def test_a_file_pyarrow_stopped_early_is_read_again_whole(pyarrow_ends_early: list[int], tmp_path: Path) -> None:
    outcome = _transform(tmp_path, _plays(2_000))
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 2_000, 0)
    assert pyarrow_ends_early == [BLOCK, 16 * BLOCK]


def test_blocks_grow_no_larger_than_the_limit(
    pyarrow_ends_early: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transform, "MAX_BLOCK_BYTES", 2 * BLOCK)
    body = _plays(30) + f"1,{'x' * 20_000},2024-01-01 10:00:00\n".encode()  # one row of 5 blocks
    outcome = _transform(tmp_path, body)
    assert outcome.outcome == REJECTED
    assert pyarrow_ends_early == [BLOCK, 2 * BLOCK]


@pytest.mark.usefixtures("pyarrow_ends_at_end_of_file")
def test_a_row_whose_error_pyarrow_lost_after_reading_the_whole_file_rejects_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI once loaded such a file without its long row: pyarrow had read all of it.
    monkeypatch.setattr(transform, "MAX_BLOCK_BYTES", 2 * BLOCK)
    body = _plays(30) + f"1,{'x' * 20_000},2024-01-01 10:00:00\n".encode()
    outcome = _transform(tmp_path, body)
    assert (outcome.outcome, outcome.reason) == (REJECTED, "a row is longer than 0 MB")
