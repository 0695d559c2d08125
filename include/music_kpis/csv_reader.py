"""Stream a raw CSV file as batches of text, in bounded memory, with pyarrow.

Every value is read as bytes and decoded here, so that the rules, not the
reader, decide what is valid: a row with the wrong number of fields or a value
that is not UTF-8 is reported as that row's problem instead of failing the
whole file. Rows are numbered as data rows of the file (1 = first row after
the header), whether they parsed or not.

`csv_stream` turns the object as stored into the CSV text these read: a
`.csv.gz` object is decompressed as it streams, and a last line without a
newline gets one (a header-only file then reads as 0 rows, not as empty).
"""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# Rows the CSV parser itself could not take, reported with their data-row number.
PARSE_PROBLEM = "row has {actual} field(s), the header has {expected}"


@dataclass
class RawBatch:
    table: pa.Table  # column i = the i-th header field; UTF-8 text ("" when empty), bytes before decode_batch
    source_rows: np.ndarray  # data-row number of each frame row
    # Reasons found while decoding, per row (None: no problem in the batch).
    decode_reasons: list[str | None] | None
    # Rows dropped by the parser: (data-row number, reason, raw text).
    unparsed: list[tuple[int, str, str]] = field(default_factory=list)


class EmptyFile(Exception):
    """The file has no header row."""


class ReadStoppedEarly(Exception):
    """pyarrow's reader ended before the end of the file without raising an error.

    pyarrow's streaming CSV reader (18 and 25) sometimes loses the error a block
    raises (seen for a row longer than a block: about one read in a hundred
    ended after the rows before it, with no exception), sometimes after it had
    read the file to its end. Two facts prove a read whole: the stream was read
    to its end, and pyarrow gave at least one batch per block it read (it parses
    each block into one batch; the header row is parsed as data, so that even
    the first block gives one). When either fails, this is raised instead of a
    short file.
    """


GZIP_SUFFIX = ".gz"


def csv_stream(
    open_stream: Callable[[], AbstractContextManager[BinaryIO]], raw_key: str
) -> Callable[[], AbstractContextManager[BinaryIO]]:
    """Open the CSV text of a raw object: gunzipped as it streams when the key ends
    in .gz, and always ending with a newline."""
    compressed = raw_key.lower().endswith(GZIP_SUFFIX)

    @contextmanager
    def open_text() -> Iterator[BinaryIO]:
        with open_stream() as stored:
            # GzipFile reads the stored stream in small pieces: memory stays flat.
            text = gzip.GzipFile(fileobj=stored, mode="rb") if compressed else stored
            with _FinalNewline(text) as stream:
                yield stream  # type: ignore[misc]

    return open_text


class _FinalNewline(io.RawIOBase):
    """The stream, plus a newline at the end when its last byte is not one.

    pyarrow reads a header with no newline after it as an empty file, while
    the same header with a newline is a file of 0 rows: both are the latter.
    The newline must come in the same read as the last bytes (pyarrow looks
    for the header in the first block only), so one read is held ahead.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self.stream = stream
        self.ahead: bytes | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size) if self.ahead is None else self.ahead
        if not data:
            self.ahead = b""
            return b""
        self.ahead = self.stream.read(size)
        if not self.ahead and data[-1:] not in (b"\n", b"\r"):
            if 0 <= size <= len(data):
                self.ahead = b"\n"  # no room in this read: next one
            else:
                data += b"\n"
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_header(open_stream: Callable[[], BinaryIO]) -> list[str]:
    """The header labels as written (UTF-8, CSV-quoted names allowed)."""
    with open_stream() as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=1 << 20, use_threads=False),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _: "skip"),
            )
        except pa.ArrowInvalid as error:
            if "Empty CSV file" in str(error):
                raise EmptyFile("empty file: no header row") from error
            raise
        return list(reader.schema.names)


def read_batches(
    open_stream: Callable[[], BinaryIO], header: list[str], block_bytes: int, *, decode: bool = True
) -> Iterator[RawBatch]:
    """Yield the data rows in batches of about block_bytes of CSV text.

    With decode=False the batches hold the raw bytes (binary columns) and
    `decode_batch` turns them into text later, e.g. on a worker thread: only the
    parsing and the row numbering have to happen in file order.
    """
    unparsed: list[tuple[int, str, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        # row.number counts records from the header (1), so the data row is number - 1.
        reason = PARSE_PROBLEM.format(actual=row.actual_columns, expected=row.expected_columns)
        unparsed.append((row.number - 1, reason, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]  # header labels may repeat
    with open_stream() as raw_stream, _PacedStream(raw_stream, block_bytes) as stream:
        # The header row is read as row 0 of the first block and dropped below:
        # a first block of blank lines then still gives a batch (see ReadStoppedEarly).
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, block_size=block_bytes, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        next_row = 0  # the header row
        for batch in reader:
            # The parser runs ahead of the batches, so every unparsed row before
            # the end of this batch is already known: number the good rows around them.
            known = np.array(sorted(r for r, _, _ in unparsed if r >= next_row), dtype=np.int64)
            candidates = np.arange(next_row, next_row + batch.num_rows + len(known), dtype=np.int64)
            source_rows = candidates[~np.isin(candidates, known)][: batch.num_rows] if len(known) else candidates
            end = int(source_rows[-1]) + 1 if batch.num_rows else next_row
            done = [u for u in unparsed if u[0] < end]
            unparsed[:] = [u for u in unparsed if u[0] >= end]  # in place: the handler keeps appending
            table = pa.Table.from_batches([batch])
            if next_row == 0:
                table, source_rows = table.slice(1), source_rows[1:]
            batch_bytes = RawBatch(table, source_rows, None, done)
            stream.took_block()
            yield decode_batch(batch_bytes, header) if decode else batch_bytes
            next_row = end
        stream.check_read_whole()
        if unparsed:  # unparsable rows after the last good one
            empty = pa.Table.from_batches([_empty_batch(len(header))])
            yield RawBatch(_decode(empty, header)[0], np.array([], dtype=np.int64), None, unparsed)


class _PacedStream(io.RawIOBase):
    """The raw stream, read no more than READ_AHEAD blocks ahead of the batches taken.

    pyarrow's CSV reader fills a deep read-ahead queue on a background thread;
    with 4 MB blocks that is some 200 MB of file held in memory for nothing,
    since validation is slower than reading. Reads wait (never longer than
    PACE_TIMEOUT, so the reader always moves on); counting bytes, not reads,
    keeps a stream that returns short reads paced the same way.
    """

    READ_AHEAD = 2
    PACE_TIMEOUT = 1.0

    def __init__(self, stream: BinaryIO, block_bytes: int) -> None:
        super().__init__()
        self.stream, self.block_bytes = stream, block_bytes
        self.bytes_read = 0
        self.taken = 0
        self.turn = threading.Condition()
        self.reading = threading.Lock()  # one read of the stream at a time
        self.at_end = False
        self.blocks = 0  # the blocks pyarrow parses: one per read that returned bytes
        self.ends_with_cr = False

    def readable(self) -> bool:
        return True

    def _may_read(self) -> bool:
        return self.closed or self.bytes_read - self.taken * self.block_bytes < self.READ_AHEAD * self.block_bytes

    def read(self, size: int = -1) -> bytes:
        with self.turn:
            self.turn.wait_for(self._may_read, self.PACE_TIMEOUT)
        with self.reading:
            data = self.stream.read(size)
            self.at_end = self.at_end or (not data and size != 0)
            if data:
                # pyarrow drops the LF of a CRLF split between reads: a read of that LF alone is no block.
                if not (data == b"\n" and self.ends_with_cr):
                    self.blocks += 1
                self.ends_with_cr = data.endswith(b"\r")
        with self.turn:
            self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def check_read_whole(self) -> None:
        """After pyarrow's last batch: raises ReadStoppedEarly unless the whole stream was
        read and each block it read gave a batch (one took_block each)."""
        if not self.at_end:
            # pyarrow may finish without a last empty read (a CRLF split by the last block
            # boundary): then nothing is left to read.
            with self.reading:
                rest = self.stream.read(1)
            if rest:
                raise ReadStoppedEarly(
                    f"the CSV reader stopped after {self.bytes_read} bytes, before the end of the file"
                )
        if self.taken < self.blocks:
            raise ReadStoppedEarly(f"the CSV reader gave {self.taken} batch(es) for the {self.blocks} blocks it read")

    def took_block(self) -> None:
        with self.turn:
            self.taken += 1
            self.turn.notify_all()

    def close(self) -> None:
        with self.turn:
            super().close()
            self.turn.notify_all()


def _empty_batch(width: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array([], type=pa.binary())] * width, names=[f"c{i}" for i in range(width)])


def decode_batch(batch: RawBatch, header: list[str]) -> RawBatch:
    """A batch of bytes (read_batches with decode=False) as UTF-8 text."""
    table, reasons = _decode(batch.table, header)
    return RawBatch(table, batch.source_rows, reasons, batch.unparsed)


def _decode(batch: pa.Table, header: list[str]) -> tuple[pa.Table, list[str | None] | None]:
    """Bytes to UTF-8 text, column by column; rows with invalid bytes get a reason."""
    reasons: list[str | None] | None = None
    columns = []
    for position, label in enumerate(header):
        raw = batch.column(position)
        try:
            text = raw.cast(pa.string())
        except pa.ArrowInvalid:  # rare: find the rows, blank them, say why
            reasons = reasons or [None] * batch.num_rows
            decoded = []
            for row, value in enumerate(raw.to_pylist()):
                try:
                    decoded.append(value.decode("utf-8"))
                except UnicodeDecodeError as error:
                    decoded.append("")
                    reasons[row] = reasons[row] or f"{label.strip()}: not valid UTF-8 (byte {error.start})"
            text = pa.array(decoded, type=pa.string())
        columns.append(text)
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(header))]), reasons


def raw_records(header: list[str], columns: list[list[str | None]]) -> list[str]:
    """Raw rows as JSON text (header label -> value), for the quarantine file;
    `columns` holds the values column by column (None reads as "").

    The same text as json.dumps(dict(zip(header, row)), ensure_ascii=False): a
    repeated label keeps its first place and its last value. Built column-wise
    with json's C string encoder, since this runs under the GIL for every
    rejected row.
    """
    position = {label: i for i, label in enumerate(header)}  # first place, last value
    fields = [_json_field(label, columns[i]) for label, i in position.items()]
    return ["{" + ", ".join(row) + "}" for row in zip(*fields, strict=True)] if fields else ["{}"] * _rows(columns)


def _json_field(label: str, values: list[str | None]) -> list[str]:
    key = f"{encode_basestring(label)}: "
    return [key + encode_basestring(v or "") for v in values]


def _rows(columns: list[list[str | None]]) -> int:
    return len(columns[0]) if columns else 0
