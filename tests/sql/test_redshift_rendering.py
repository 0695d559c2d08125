"""The Redshift rendering of every SQL step parses as Redshift SQL and obeys
the rules Redshift enforces that PostgreSQL does not; the COPY that
S3ToRedshiftOperator runs for a mapped file is the one we expect."""

from __future__ import annotations

import json
import re

import pytest
import sqlglot
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from sqlglot import exp

from include.music_kpis.files import batch_id_for, transformed_prefix
from tests.helpers.dag import RUN_ID, load_dag, rendered_steps


@pytest.fixture(scope="module")
def redshift_steps() -> dict[str, list[str]]:
    with pytest.MonkeyPatch.context() as mp:
        return rendered_steps(mp, "redshift")


@pytest.fixture(scope="module")
def postgres_steps() -> dict[str, list[str]]:
    with pytest.MonkeyPatch.context() as mp:
        return rendered_steps(mp, "postgres")


def parsed(statement: str) -> exp.Expression:
    (tree,) = sqlglot.parse(statement, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    return tree


def test_every_statement_parses_as_redshift(redshift_steps) -> None:
    assert len(redshift_steps) == 14  # create_tables both ways, 5 SQL steps, 6 checks, the report DAG's query
    for task_id, statements in redshift_steps.items():
        assert statements, task_id
        for statement in statements:
            tree = parsed(statement)
            assert not isinstance(tree, exp.Command), f"{task_id}: sqlglot could not parse: {statement[:200]}"


def test_merge_has_one_matched_and_one_not_matched_clause(redshift_steps) -> None:
    merges = [s for statements in redshift_steps.values() for s in statements if s.lstrip().upper().startswith("MERGE")]
    assert len(merges) == 2  # users and songs
    for statement in merges:
        tree = parsed(statement)
        assert isinstance(tree, exp.Merge)
        whens = tree.args["whens"].expressions
        matched = [w for w in whens if w.args.get("matched")]
        not_matched = [w for w in whens if not w.args.get("matched")]
        assert len(matched) == 1 and len(not_matched) == 1, statement
        assert all(w.args.get("condition") is None for w in whens), "Redshift MERGE clauses take no AND condition"
        assert isinstance(tree.args["using"], exp.Table), "Redshift MERGE needs a table as its source"


FORBIDDEN_ON_REDSHIFT = {
    "DISTINCT ON": r"\bDISTINCT\s+ON\b",
    "TRUNCATE (commits the open transaction)": r"\bTRUNCATE\b",
    "IS DISTINCT FROM": r"\bIS\s+(NOT\s+)?DISTINCT\s+FROM\b",
    "ON CONFLICT": r"\bON\s+CONFLICT\b",
    "COLLATE": r"\bCOLLATE\b",
    "CREATE INDEX": r"\bCREATE\s+(UNIQUE\s+)?INDEX\b",
    "explicit transaction control (the operator commits once)": r"^\s*(BEGIN|COMMIT|ROLLBACK)\b",
}


@pytest.mark.parametrize("name", list(FORBIDDEN_ON_REDSHIFT))
def test_no_postgres_only_constructs(redshift_steps, name: str) -> None:
    pattern = re.compile(FORBIDDEN_ON_REDSHIFT[name], re.IGNORECASE | re.MULTILINE)
    for task_id, statements in redshift_steps.items():
        for statement in statements:
            code = re.sub(r"--[^\n]*", "", statement)
            assert not pattern.search(code), f"{task_id} uses {name}: {statement[:200]}"


def test_no_redshift_only_constructs_on_postgres(postgres_steps) -> None:
    for statements in postgres_steps.values():
        for statement in statements:
            code = re.sub(r"--[^\n]*", "", statement)
            assert not re.search(r"\b(QUALIFY|DISTKEY|SORTKEY|DISTSTYLE|GETDATE|ENCODE)\b", code, re.IGNORECASE), (
                statement
            )


def test_reserved_word_columns_are_quoted(redshift_steps) -> None:
    # EXPLICIT is a reserved word in Redshift; the songs column must be quoted everywhere.
    for statements in redshift_steps.values():
        for statement in statements:
            code = re.sub(r"--[^\n]*", "", statement)
            assert not re.search(r'(?<!")\bexplicit\b(?!")', code), statement


def redshift_tables(redshift_steps) -> dict[str, exp.Create]:
    tables = {}
    for statement in redshift_steps["create_tables"]:
        tree = parsed(statement)
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            tables[tree.this.this.name] = tree
    return tables


def table_keys(tree: exp.Create) -> tuple[str | None, list[str], bool]:
    """(DISTKEY column, SORTKEY columns, compound) of a parsed CREATE TABLE."""
    properties = tree.args["properties"].expressions if tree.args.get("properties") else []
    dist = next((p.this.name for p in properties if isinstance(p, exp.DistKeyProperty)), None)
    sort = next((p for p in properties if isinstance(p, exp.SortKeyProperty)), None)
    sort_columns = [c.name for c in sort.this] if sort else []
    return dist, sort_columns, bool(sort and sort.args.get("compound"))


def test_redshift_ddl_declares_distribution_and_sort_keys(redshift_steps) -> None:
    tables = redshift_tables(redshift_steps)
    # The fact table: plays spread by user (joined slice-locally with staging and the
    # batch's temp tables), sorted by date first so the batch's steps read its dates only.
    dist, sort, compound = table_keys(tables["streams"])
    assert dist == "user_id" and compound and sort[0] == "listen_date"
    assert table_keys(tables["stg_streams"])[0] == "user_id"
    for kpis in ("genre_kpis", "hourly_kpis"):
        assert table_keys(tables[kpis])[1][:1] == ["listen_date"]


# AZ64 takes integers, decimals, dates and timestamps only.
AZ64_TYPES = {"BIGINT", "INT", "SMALLINT", "DECIMAL", "DATE", "TIMESTAMP", "TIMESTAMPTZ"}


def test_redshift_columns_have_explicit_encodings(redshift_steps) -> None:
    for name, tree in redshift_tables(redshift_steps).items():
        _, sort, _ = table_keys(tree)
        for column in tree.this.expressions:
            if not isinstance(column, exp.ColumnDef):
                continue
            encodings = [
                c.kind.this.name.upper()
                for c in column.args.get("constraints") or []
                if isinstance(c.kind, exp.EncodeColumnConstraint)
            ]
            assert len(encodings) == 1, f"{name}.{column.name}: one ENCODE per column"
            encoding = encodings[0]
            kind = column.args["kind"].this.name
            if sort and column.name == sort[0]:
                # The first sort key column stays uncompressed: its zone maps drive range-restricted scans.
                assert encoding == "RAW", f"{name}.{column.name}"
            elif kind in AZ64_TYPES:
                assert encoding == "AZ64", f"{name}.{column.name}"
            else:
                assert encoding == "ZSTD", f"{name}.{column.name}"


def test_batch_temp_tables_are_distributed_like_the_fact_table(redshift_steps) -> None:
    batch_tables = [s for s in redshift_steps["load_streams"] if re.search(r"CREATE TEMP TABLE tmp_plays\b", s)]
    assert batch_tables, "load_streams makes tmp_plays, the batch's plays"
    for statement in batch_tables:
        properties = parsed(statement).args["properties"].expressions
        assert [p.this.name for p in properties if isinstance(p, exp.DistKeyProperty)] == ["user_id"]


def test_temp_tables_are_dropped_before_created(redshift_steps) -> None:
    # Redshift keeps temp tables for the session; a retried step must not collide.
    for task_id, statements in redshift_steps.items():
        dropped = set()
        for statement in statements:
            if m := re.match(r"\s*DROP TABLE IF EXISTS (\w+)", statement):
                dropped.add(m.group(1))
            if m := re.search(r"CREATE TEMP TABLE (\w+)", statement):
                assert m.group(1) in dropped, f"{task_id}: {m.group(1)} created without a DROP first"


def test_batch_scope_is_a_hex_literal(redshift_steps) -> None:
    batch = batch_id_for(RUN_ID)
    assert re.fullmatch(r"[0-9a-f]{32}", batch)
    text = " ".join(redshift_steps["load_streams"])
    assert f"'{batch}'" in text and RUN_ID not in text


def test_copy_statement_for_a_mapped_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the mapped S3ToRedshiftOperator for one file; capture the SQL at the hook."""
    role = "arn:aws:iam::123456789012:role/music-kpis-redshift-copy"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUSIC_KPIS_REDSHIFT_COPY",
        json.dumps({"conn_type": "aws", "extra": {"role_arn": role}}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET", "music-processed")
    captured: list = []
    monkeypatch.setattr(RedshiftSQLHook, "run", lambda self, sql, autocommit=False, **kw: captured.append(sql))

    mapped = load_dag(monkeypatch, "redshift").get_task("copy_to_staging")
    file_id = "0123456789abcdef0123456789abcdef"
    job = {"table": "stg_streams", "s3_key": transformed_prefix("streams", file_id)}
    operator = S3ToRedshiftOperator(task_id="copy_one", **{**mapped.partial_kwargs, **job})
    operator.render_template_fields({"var": {"value": _Variables()}})
    operator.execute(context={})

    (statement,) = captured
    normalized = " ".join(statement.split())
    assert normalized == (
        f"COPY stg_streams FROM 's3://music-processed/transformed/streams/{file_id}/' "
        f"credentials 'aws_iam_role={role}' FORMAT AS PARQUET;"
    )
    # The key ends in "/": it matches this file's folder only, never another file id.
    assert job["s3_key"].endswith(f"{file_id}/")


class _Variables:
    """Template accessor `var.value.<name>` reading AIRFLOW_VAR_* like Airflow does."""

    def __getattr__(self, name: str) -> str:
        import os

        return os.environ[f"AIRFLOW_VAR_{name.upper()}"]
