"""File-level rules of contract section 2 on real S3 (moto server), reached as the tasks
reach it (the provider's S3Hook on the AWS connection): the rejection threshold,
unreadable files, and what lands in the processed bucket."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import time
import uuid
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.music_kpis.files import RawFile
from include.music_kpis.outcomes import LOADED, REJECTED
from include.music_kpis.parquet_parts import PartWriter, S3ProcessedStore
from include.music_kpis.settings import AWS_CONN_ID
from include.music_kpis.task_memory import UPLOAD_THREADS
from include.music_kpis.tasks import s3_hook
from include.music_kpis.transform import process_raw_file, transform_file
from localdev.folder_store import FolderStore
from localdev.local_stack import aws_connection, connection_environment, create_buckets, s3_client

HEADER = "user_id,track_id,listen_time\n"
GOOD = "1,t1,2024-01-01 10:00:00\n"


@pytest.fixture
def aws_connection_to_moto(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS connection as the local stack sets it: moto's address in its endpoint_url extra."""
    monkeypatch.setenv(connection_environment(AWS_CONN_ID), aws_connection(moto_endpoint))
    return moto_endpoint


@pytest.fixture
def buckets(aws_connection_to_moto: str):
    moto_endpoint = aws_connection_to_moto
    suffix = uuid.uuid4().hex[:10]
    raw, processed = f"raw-{suffix}", f"processed-{suffix}"
    create_buckets(moto_endpoint, raw, processed)
    s3 = s3_client(moto_endpoint)

    def process(key: str, body: bytes | str, *, dataset: str = "streams", threshold: float = 0.05, block_bytes=1 << 20):
        data = body.encode("utf-8") if isinstance(body, str) else body
        s3.put_object(Bucket=raw, Key=key, Body=data)
        etag = s3.head_object(Bucket=raw, Key=key)["ETag"].strip('"')
        return process_raw_file(
            RawFile(dataset, key, etag),
            raw_bucket=raw,
            processed_bucket=processed,
            reject_threshold=threshold,
            s3=s3_hook(),
            block_bytes=block_bytes,
        )

    def keys(prefix: str = "") -> list[str]:
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=processed, Prefix=prefix).get("Contents", []))

    def table(key: str):
        return pq.read_table(io.BytesIO(s3.get_object(Bucket=processed, Key=key)["Body"].read()))

    return process, keys, table


@pytest.fixture
def processed_store(aws_connection_to_moto: str) -> S3ProcessedStore:
    bucket = f"processed-{uuid.uuid4().hex[:10]}"
    create_buckets(aws_connection_to_moto, bucket)
    return S3ProcessedStore(bucket, s3_hook())


def _stored_keys(store: S3ProcessedStore, prefix: str = "") -> list[str]:
    client = s3_client(store.s3.conn_config.endpoint_url)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_a_part_above_the_multipart_threshold_is_uploaded_whole(processed_store, tmp_path: Path) -> None:
    hook = processed_store.s3
    assert hook.transfer_config.max_concurrency == UPLOAD_THREADS  # pinned, not boto3's 10
    part = tmp_path / "part.parquet"
    part.write_bytes(uuid.uuid4().bytes * (hook.transfer_config.multipart_threshold // 16 + 4096))
    processed_store.upload(part, "transformed/streams/f/part-00000.parquet")
    client = s3_client(hook.conn_config.endpoint_url)
    stored = client.get_object(Bucket=processed_store.bucket, Key="transformed/streams/f/part-00000.parquet")
    assert "-" in stored["ETag"]  # a multipart upload's ETag ends in -<number of parts>
    assert stored["Body"].read() == part.read_bytes()


def test_remove_prefix_removes_every_part_under_it_and_nothing_else(processed_store, tmp_path: Path) -> None:
    # More keys than one ListObjectsV2 page or one DeleteObjects request takes (1000 each;
    # AWS: Amazon S3 API Reference, "ListObjectsV2" and "DeleteObjects").
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    client = s3_client(processed_store.s3.conn_config.endpoint_url)
    doomed = [f"quarantine/streams/f1/rows-{i:05d}.parquet" for i in range(1001)]
    for key in doomed:
        client.put_object(Bucket=processed_store.bucket, Key=key, Body=b"")
    processed_store.upload(empty, "quarantine/streams/f10/rows-00000.parquet")  # a sibling sharing the stem
    processed_store.remove_prefix("quarantine/streams/f1/")
    assert _stored_keys(processed_store) == ["quarantine/streams/f10/rows-00000.parquet"]
    processed_store.remove_prefix("quarantine/streams/none/")  # nothing there: no error


def test_good_file_writes_validated_and_transformed_parquet(buckets) -> None:
    process, keys, table = buckets
    outcome = process("streams/a.csv", HEADER + GOOD * 3)
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 3, 0)
    transformed = [k for k in keys("transformed/streams/") if k.endswith(".parquet")]
    assert transformed == [f"transformed/streams/{outcome.file_id}/part-00000.parquet"]
    assert table(transformed[0]).column_names[-2:] == ["file_id", "source_row"]
    assert keys("validated/streams/") == [f"validated/streams/{outcome.file_id}/part-00000.parquet"]
    # validated/ holds the very rows handed to the warehouse (docs: transform._open_outputs).
    assert table(keys("validated/streams/")[0]).equals(table(transformed[0]))
    assert keys("quarantine/") == []


def test_bad_rows_are_quarantined_with_reasons(buckets) -> None:
    process, keys, table = buckets
    body = HEADER + GOOD * 19 + "x,t1,2024-01-01 10:00:00\n"  # 1 of 20 = 5 %: accepted
    outcome = process("streams/b.csv", body)
    assert (outcome.outcome, outcome.rows_quarantined) == (LOADED, 1)
    (quarantine,) = keys("quarantine/streams/")
    rows = table(quarantine).to_pylist()
    assert rows == [
        {
            "raw_key": "streams/b.csv",
            "source_row": 20,
            "reason": "user_id: not an integer (got 'x')",
            "record": '{"user_id": "x", "track_id": "t1", "listen_time": "2024-01-01 10:00:00"}',
        }
    ]


def test_above_threshold_rejects_the_whole_file(buckets) -> None:
    process, keys, table = buckets
    body = HEADER + GOOD * 18 + "x,t1,2024-01-01 10:00:00\n" * 2  # 2 of 20 = 10 %
    outcome = process("streams/c.csv", body)
    assert outcome.outcome == REJECTED
    assert outcome.reason.startswith("2 of 20 rows (10.0%) broke a rule, above the 5% threshold; first: row 19")
    assert keys("transformed/") == [] and keys("validated/") == []  # never half-loaded
    # The file's reason, and the rows rejected one by one (streamed out while reading).
    prefix = f"quarantine/streams/{outcome.file_id}/"
    assert keys("quarantine/streams/") == [f"{prefix}file.parquet", f"{prefix}rows-00000.parquet"]
    (file_row,) = table(f"{prefix}file.parquet").to_pylist()
    assert (file_row["source_row"], file_row["reason"]) == (None, f"file rejected: {outcome.reason}")
    assert table(f"{prefix}rows-00000.parquet").column("source_row").to_pylist() == [19, 20]


def test_threshold_is_a_setting(buckets) -> None:
    process, _, _ = buckets
    body = HEADER + GOOD * 18 + "x,t1,2024-01-01 10:00:00\n" * 2
    assert process("streams/d.csv", body, threshold=0.2).outcome == LOADED


def test_threshold_counts_the_whole_file_across_blocks(buckets) -> None:
    process, keys, _ = buckets
    body = HEADER + "x,t1,2024-01-01 10:00:00\n" * 300 + GOOD * 2000  # 13 %, bad rows all in the first block
    outcome = process("streams/e.csv", body, block_bytes=4096)
    assert outcome.rows_read == 2300
    assert outcome.outcome == REJECTED
    assert keys("transformed/") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty file: no header row"),
        (b"user_id,track_id\n1,t\n", "missing required column(s): listen_time"),
        (bytes(range(256)) * 4, "unreadable CSV"),
    ],
)
def test_unreadable_files_are_rejected_with_a_reason(buckets, body: bytes, reason: str) -> None:
    process, _, _ = buckets
    outcome = process("streams/bad.csv", body)
    assert outcome.outcome == REJECTED
    assert reason in outcome.reason


def test_header_only_file_is_loaded_empty(buckets) -> None:
    process, _, _ = buckets
    outcome = process("streams/empty.csv", HEADER)
    assert (outcome.outcome, outcome.rows_read) == (LOADED, 0)


def test_quoted_fields_with_commas_and_newlines(buckets) -> None:
    process, keys, table = buckets
    body = (
        "user_id,user_name,user_age,user_country,created_at\n"
        '1,"Doe, Jane",30,"United\nStates",2024-01-01\n'
        '2,"=HYPERLINK(""x"")",40,FR,2024-01-01\n'
    )
    outcome = process("metadata/users/u.csv", body, dataset="users")
    assert outcome.outcome == LOADED
    (part,) = [k for k in keys("transformed/users/") if k.endswith(".parquet")]
    rows = table(part).to_pylist()
    assert [r["user_name"] for r in rows] == ["Doe, Jane", '=HYPERLINK("x")']
    assert rows[0]["user_country"] == "United\nStates"


@pytest.mark.parametrize("key", ["streams/with space.csv", "streams/it's;here.csv", "streams/[1]*?.csv"])
def test_awkward_keys_are_read_literally(buckets, key: str) -> None:
    process, _, _ = buckets
    outcome = process(key, HEADER + GOOD)
    assert (outcome.outcome, outcome.rows_read) == (LOADED, 1)


def test_ragged_and_non_utf8_rows_are_quarantined_not_the_file(buckets) -> None:
    process, keys, table = buckets
    lines = [GOOD] * 60
    lines[4] = "1,t1,2024-01-01 10:00:00,extra\n"  # row 5: too many fields
    lines[9] = "1,t1\n"  # row 10: too few
    body = (HEADER + "".join(lines)).encode() + b"2,caf\xe9,2024-01-01 10:00:00\n"  # row 61: Latin-1 byte
    outcome = process("streams/ragged.csv", body)
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 61, 3)
    (quarantine,) = keys("quarantine/streams/")
    reasons = {r["source_row"]: r["reason"] for r in table(quarantine).to_pylist()}
    assert reasons == {
        5: "row has 4 field(s), the header has 3",
        10: "row has 2 field(s), the header has 3",
        61: "track_id: not valid UTF-8 (byte 3)",
    }
    transformed = [k for k in keys("transformed/streams/") if k.endswith(".parquet")]
    source_rows = [r for k in transformed for r in table(k).column("source_row").to_pylist()]
    assert source_rows == [r for r in range(1, 61) if r not in (5, 10)]


def test_row_numbers_stay_exact_across_blocks(buckets) -> None:
    process, keys, table = buckets
    lines = [f"{i},t{i},2024-01-01 10:00:00\n" for i in range(1, 3001)]
    lines[1499] = "1500,t1500\n"  # ragged row in the middle of the file
    lines[2999] = "oops,t3000,2024-01-01 10:00:00\n"
    outcome = process("streams/long.csv", HEADER + "".join(lines), block_bytes=4096)
    assert (outcome.rows_read, outcome.rows_quarantined) == (3000, 2)
    transformed = sorted(k for k in keys("transformed/streams/") if k.endswith(".parquet"))
    rows = [r for k in transformed for r in table(k).select(["user_id", "source_row"]).to_pylist()]
    assert all(r["user_id"] == r["source_row"] for r in rows)  # user_id i was written on data row i
    (quarantine,) = keys("quarantine/streams/")
    assert table(quarantine).column("source_row").to_pylist() == [1500, 3000]  # in file order


def test_a_row_longer_than_a_block_is_read_with_larger_blocks(buckets) -> None:
    process, _, _ = buckets
    body = HEADER + GOOD * 30 + f"1,{'x' * 20_000},2024-01-01 10:00:00\n"
    outcome = process("streams/long_row.csv", body, block_bytes=4096)
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 31, 1)


class PartsFolder(FolderStore):
    """The processed bucket as a local folder, listing the Parquet parts written under a prefix,
    and which keys were uploaded and which copied within it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.uploaded: list[str] = []
        self.copied: list[str] = []

    def upload(self, local_path: Path, key: str) -> None:
        self.uploaded.append(key)
        super().upload(local_path, key)

    def copy(self, source_key: str, key: str) -> None:
        self.copied.append(key)
        super().copy(source_key, key)

    def parts(self, prefix: str) -> list[Path]:
        return sorted((self.root / prefix).glob("*.parquet"))


def test_large_outputs_are_streamed_in_parts_in_file_order(tmp_path: Path) -> None:
    # Tiny blocks, row groups and parts: the file is validated block by block on
    # several threads, and every output rolls over into several parts.
    lines = [f"{i},t{i},2024-01-01 10:00:00\n" if i % 7 else f"x{i},t{i},2024-01-01 10:00:00\n" for i in range(1, 4001)]
    csv = tmp_path / "streams.csv"
    csv.write_text(HEADER + "".join(lines), encoding="utf-8")
    store = PartsFolder(tmp_path / "processed")
    raw = RawFile("streams", "streams/big.csv", "etag")
    outcome = transform_file(
        raw, partial(csv.open, "rb"), store, reject_threshold=0.2, block_bytes=4096, part_bytes=1, group_rows=500
    )
    bad = [i for i in range(1, 4001) if i % 7 == 0]
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 4000, len(bad))

    transformed = store.parts(f"transformed/streams/{raw.file_id}/")
    assert len(transformed) > 1
    rows = pa.concat_tables([pq.read_table(p) for p in transformed]).column("source_row").to_pylist()
    assert rows == [i for i in range(1, 4001) if i % 7]
    validated = store.parts(f"validated/streams/{raw.file_id}/")
    assert [p.read_bytes() for p in validated] == [p.read_bytes() for p in transformed]
    # Each part is sent once; validated/ gets copies made within the bucket.
    assert store.copied == [p.relative_to(store.root).as_posix() for p in validated]
    assert not any(key.startswith("validated/") for key in store.uploaded)

    quarantine = store.parts(f"quarantine/streams/{raw.file_id}/")
    assert len(quarantine) > 1 and all(p.name.startswith("rows-") for p in quarantine)
    rejected = pa.concat_tables([pq.read_table(p) for p in quarantine]).to_pylist()
    assert [r["source_row"] for r in rejected] == bad
    assert rejected[0]["reason"] == "user_id: not an integer (got 'x7')"


def test_row_groups_keep_statistics_of_dates_times_and_numbers_only(tmp_path: Path) -> None:
    csv = tmp_path / "streams.csv"
    csv.write_text(HEADER + "1,t1,2024-01-01 10:00:00\n2,t2,2024-01-03 11:00:00\n", encoding="utf-8")
    store = PartsFolder(tmp_path / "processed")
    raw = RawFile("streams", "streams/stats.csv", "etag")
    transform_file(raw, partial(csv.open, "rb"), store, reject_threshold=0.0)

    (part,) = store.parts(f"transformed/streams/{raw.file_id}/")
    group = pq.ParquetFile(part).metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert {name for name, column in columns.items() if column.is_stats_set} == {
        "user_id",
        "listen_time",
        "listen_date",
        "listen_hour",
        "source_row",
    }
    dates = columns["listen_date"].statistics
    assert (dates.min, dates.max) == (dt.date(2024, 1, 1), dt.date(2024, 1, 3))


class HeldUploads(PartsFolder):
    """Holds the upload of the first part until the writer has begun the next part's file
    (or a few seconds have passed), and notes whether it had."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writer: PartWriter | None = None
        self.next_part_begun_during_upload: bool | None = None

    def upload(self, local_path: Path, key: str) -> None:
        if self.next_part_begun_during_upload is None:
            assert self.writer is not None
            next_part = Path(self.writer.tmp.name) / "part-00001.parquet"
            deadline = time.monotonic() + 5
            while not next_part.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            self.next_part_begun_during_upload = next_part.exists()
        super().upload(local_path, key)


def test_a_part_is_uploaded_while_the_next_is_encoded(tmp_path: Path) -> None:
    store = HeldUploads(tmp_path / "processed")
    schema = pa.schema([("n", pa.int64())])
    writer = PartWriter(store, "transformed/streams/f/", schema, part_bytes=1, group_rows=1)
    store.writer = writer
    for n in range(3):
        writer.write(pa.table({"n": [n]}, schema=schema))
    writer.close()
    assert store.next_part_begun_during_upload
    parts = store.parts("transformed/streams/f/")
    assert [pq.read_table(p).column("n").to_pylist() for p in parts] == [[0], [1], [2]]


class FailingUploads(PartsFolder):
    def upload(self, local_path: Path, key: str) -> None:
        raise ConnectionResetError(f"{key}: peer went away")


def test_a_failed_upload_is_raised_when_the_writer_closes(tmp_path: Path) -> None:
    store = FailingUploads(tmp_path / "processed")
    schema = pa.schema([("n", pa.int64())])
    writer = PartWriter(store, "transformed/streams/f/", schema, part_bytes=1, group_rows=1)
    writer.write(pa.table({"n": [0]}, schema=schema))  # only queued: the upload fails on its own thread
    with pytest.raises(ConnectionResetError, match="part-00000"):
        writer.close()
    assert store.parts("transformed/streams/f/") == []


def test_parts_of_an_earlier_attempt_are_cleared(tmp_path: Path) -> None:
    csv = tmp_path / "streams.csv"
    csv.write_text(HEADER + GOOD * 3, encoding="utf-8")
    store = PartsFolder(tmp_path / "processed")
    raw = RawFile("streams", "streams/retried.csv", "etag")
    stale = tmp_path / "processed" / f"quarantine/streams/{raw.file_id}/rows-00003.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a crashed attempt")
    outcome = transform_file(raw, partial(csv.open, "rb"), store, reject_threshold=0.05)
    assert (outcome.outcome, outcome.rows_quarantined) == (LOADED, 0)
    assert store.parts(f"quarantine/streams/{raw.file_id}/") == []
    assert len(store.parts(f"transformed/streams/{raw.file_id}/")) == 1


# --- one bad file never stops the others -------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00\x00\x00\x10\x08\x06\x00,\x1f\xf3\xff\na,\x00\x9a\x01\n"


@pytest.mark.parametrize("body", [HEADER.rstrip("\n"), HEADER.rstrip("\n") + "\r\n", HEADER.replace("\n", "\r")])
def test_header_only_file_is_loaded_empty_with_or_without_a_final_newline(buckets, body: str) -> None:
    process, _, _ = buckets
    outcome = process("streams/header_only.csv", body)
    assert (outcome.outcome, outcome.rows_read) == (LOADED, 0)


def test_last_row_without_a_newline_is_read(buckets) -> None:
    process, _, _ = buckets
    outcome = process("streams/no_final_newline.csv", HEADER + GOOD * 2 + GOOD.rstrip("\n"))
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 3, 0)


def test_gzip_file_is_read_like_csv(buckets) -> None:
    process, keys, table = buckets
    body = HEADER + "".join(f"{i},t{i},2024-01-01 10:00:00\n" for i in range(1, 3001)) + "x,t,2024-01-01 10:00:00\n"
    outcome = process("streams/batch.csv.gz", gzip.compress(body.encode()), threshold=0.01, block_bytes=4096)
    assert (outcome.outcome, outcome.rows_read, outcome.rows_quarantined) == (LOADED, 3001, 1)
    parts = [k for k in keys(f"transformed/streams/{outcome.file_id}/")]
    assert pa.concat_tables([table(k) for k in parts]).column("source_row").to_pylist() == list(range(1, 3001))


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        ("streams/truncated.csv.gz", gzip.compress((HEADER + GOOD * 500).encode())[:-40], "EOFError"),
        ("streams/not_gzip.csv.gz", (HEADER + GOOD).encode(), "BadGzipFile"),
        ("streams/image.csv", PNG, "not a CSV in UTF-8"),
        ("streams/utf16.csv", (HEADER + GOOD).encode("utf-16"), "header is not valid UTF-8"),
    ],
)
def test_files_that_are_not_csv_text_are_rejected_with_a_printable_reason(
    buckets, key: str, body: bytes, reason: str
) -> None:
    process, keys, table = buckets
    outcome = process(key, body)
    assert outcome.outcome == REJECTED
    assert reason in outcome.reason
    assert outcome.reason.isprintable() and len(outcome.reason) < 300
    assert keys(f"transformed/streams/{outcome.file_id}/") == []
    (record,) = table(f"quarantine/streams/{outcome.file_id}/file.parquet").to_pylist()
    assert record["reason"] == f"file rejected: {outcome.reason}"


class _BrokenStream(io.BytesIO):
    """A stream that fails after its first read with the given error."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        super().__init__(data)
        self.error, self.reads = error, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise self.error
        return super().read(size)


def test_an_unexpected_error_in_one_file_rejects_that_file(tmp_path: Path) -> None:
    store = PartsFolder(tmp_path / "processed")
    raw = RawFile("streams", "streams/odd.csv", "etag")
    body = (HEADER + GOOD * 3).encode()
    outcome = transform_file(
        raw, lambda: _BrokenStream(body, ValueError("no rule knows this \x00")), store, reject_threshold=0.05
    )
    assert outcome.outcome == REJECTED
    assert outcome.reason == "could not be read as CSV: ValueError: no rule knows this \\x00"
    assert store.parts(f"transformed/streams/{raw.file_id}/") == []


@pytest.mark.parametrize("error", [ConnectionResetError("peer went away"), TimeoutError("read timed out")])
def test_a_transient_error_is_raised_for_a_retry(tmp_path: Path, error: Exception) -> None:
    store = PartsFolder(tmp_path / "processed")
    raw = RawFile("streams", "streams/a.csv", "etag")
    with pytest.raises(type(error)):
        transform_file(raw, lambda: _BrokenStream((HEADER + GOOD).encode(), error), store, reject_threshold=0.05)
    assert store.parts(f"transformed/streams/{raw.file_id}/") == []
