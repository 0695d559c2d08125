"""The Redshift gate: what Redshift would refuse fails here first, without Redshift.

Every statement of every Redshift rendering (each SQL task and the schema
migrations, for both metadata sources, and the lookups the Python tasks run)
must pass two independent parsers and the rules Redshift's own documentation
states; each rule names its page of the Amazon Redshift Database Developer
Guide. docs/redshift.md lists them with the faults they guard against.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
import sqlglot
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.transfers.redshift_to_s3 import RedshiftToS3Operator
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from sqlfluff.core import FluffConfig, Linter
from sqlglot import exp

from include.music_kpis.airflow_compat import AirflowFailException
from include.music_kpis.exports import export_jobs, export_key
from include.music_kpis.files import batch_id_for, transformed_prefix
from include.music_kpis.kpis import kpi_tables
from include.music_kpis.migrations import migrate
from include.music_kpis.operators import KpiUnloadOperator
from include.music_kpis.redshift_copy import COLUMNAR_COPY_PARAMETERS
from include.music_kpis.report_data import report_query
from include.music_kpis.settings import REDSHIFT_COPY_CONN_ID
from include.music_kpis.tasks import staging_tables
from include.music_kpis.warehouse import SQL_DIR
from tests.helpers.dag import load_dag, rendered_steps, sql_task_statements

METADATA_SOURCES = ("s3_csv", "rds_postgres")
# SQL files the Python tasks run on the warehouse (find_new_files, extract_metadata).
WAREHOUSE_LOOKUPS = ("select_ledger.sql", "select_rejected_files.sql", "select_load_errors.sql")
# The queries of publish_report (include/sql/kpi_report/).
REPORT_QUERIES = ("genre_days", "hours", "top_artist_by_hour", "top_track_by_genre", "run_files")
RESERVED_WORDS = frozenset(
    word
    for line in (Path(__file__).parent / "redshift_reserved_words.txt").read_text().splitlines()
    if not line.startswith("#")
    for word in line.split()
)


def redshift_renderings() -> dict[str, list[str]]:
    """'<metadata source>/<task or file>' -> statements, as Redshift would receive them."""
    renderings = {}
    for source in METADATA_SOURCES:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW__MUSIC_KPIS__METADATA_SOURCE", source)
            for task_id, statements in rendered_steps(mp, "redshift").items():
                renderings[f"{source}/{task_id}"] = statements
    for name in WAREHOUSE_LOOKUPS:
        # Bound parameters (%s), as the hook sends them: literals here.
        renderings[name] = [(SQL_DIR / name).read_text().replace("%s", "'2026-11-22'")]
    for name in REPORT_QUERIES:
        renderings[f"kpi_report/{name}.sql"] = [report_query(name, "redshift", batch_id=batch_id_for("manual__x"))]
    for kpi in kpi_tables():  # what export_kpis UNLOADs
        renderings[f"export/{kpi.name}"] = [kpi.export_query("redshift")]
    return renderings


RENDERINGS = redshift_renderings()
STATEMENTS = [
    pytest.param(statement, id=f"{name}#{i}")
    for name, statements in RENDERINGS.items()
    for i, statement in enumerate(statements)
]


def test_every_rendering_is_checked() -> None:
    tasks = {name.split("/", 1)[1] for name in RENDERINGS if "/" in name}
    assert {
        "create_tables",
        "create_tables:migrations",
        "upsert_users",
        "upsert_songs",
        "load_streams",
        "record_batch",
        "refresh_kpis",
    } <= tasks
    checks = {"check_plays_reconcile", "check_streams_keys_unique", "check_genre_kpis_values", "check_hourly_kpis_rows"}
    assert checks | {"music_kpis_report.log_latest_kpi_counts"} <= tasks
    assert all(RENDERINGS.values())


# --- 1. Two parsers -------------------------------------------------------------------------------

logging.getLogger("sqlfluff").setLevel(logging.WARNING)
_SQLFLUFF = Linter(config=FluffConfig(overrides={"dialect": "redshift", "templater": "raw"}))


def unparsable_sections(statement: str) -> list[str]:
    """sqlfluff's Redshift dialect: the sections it could not parse (none for valid Redshift SQL)."""
    parsed = _SQLFLUFF.parse_string(statement)
    if parsed.tree is None:
        return [v.desc() for v in parsed.violations] or ["no parse tree"]
    return [segment.raw for segment in parsed.tree.recursive_crawl("unparsable")] + [
        v.desc() for v in parsed.violations
    ]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_parses_in_sqlfluff_redshift_dialect(statement: str) -> None:
    assert unparsable_sections(statement) == []


@pytest.mark.parametrize("statement", STATEMENTS)
def test_parses_in_sqlglot_redshift_dialect(statement: str) -> None:
    (tree,) = sqlglot.parse(statement, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    assert not isinstance(tree, exp.Command), f"sqlglot could not parse: {statement[:200]}"


def test_sqlfluff_finds_a_reserved_alias() -> None:
    """The parser check is strict where sqlglot is lenient: TOP as an alias (the fault it guards)."""
    statement = "SELECT g.x, top.x FROM (SELECT 1 AS x) g JOIN (SELECT 1 AS x) top ON top.x = g.x"
    assert sqlglot.parse_one(statement, read="redshift")
    assert unparsable_sections(statement)


# --- 2. Reserved words ("Reserved words") ----------------------------------------------------------


def unquoted_reserved_identifiers(statement: str) -> set[str]:
    tree = sqlglot.parse_one(statement, read="redshift")
    return {
        ident.name
        for ident in tree.find_all(exp.Identifier)
        if not ident.args.get("quoted") and ident.name.upper() in RESERVED_WORDS
    }


@pytest.mark.parametrize("statement", STATEMENTS)
def test_no_unquoted_identifier_is_a_reserved_word(statement: str) -> None:
    assert unquoted_reserved_identifiers(statement) == set()


def test_reserved_word_check_finds_unquoted_ones() -> None:
    assert unquoted_reserved_identifiers(
        'SELECT g.x, top.x, "explicit", explicit FROM t g JOIN u top ON top.x = g.x'
    ) == {
        "top",
        "explicit",
    }
    assert "TOP" in RESERVED_WORDS and "EXPLICIT" in RESERVED_WORDS and len(RESERVED_WORDS) > 150


# --- 3. Statements Redshift refuses or that break the one-transaction rule -----------------------

FORBIDDEN = {
    # "ALTER TABLE": a column's NOT NULL cannot be changed; the table is rebuilt (deep copy) instead.
    "ALTER COLUMN ... DROP/SET NOT NULL (ALTER TABLE)": r"\bALTER\s+COLUMN\s+\S+\s+(DROP|SET)\s+NOT\s+NULL\b",
    # "TRUNCATE": it commits the open transaction, so a step would no longer be all or nothing.
    "TRUNCATE (TRUNCATE commits the transaction)": r"\bTRUNCATE\b",
    # "ALTER TABLE": ALTER COLUMN TYPE and APPEND cannot run inside a transaction block.
    "ALTER COLUMN ... TYPE (ALTER TABLE)": r"\bALTER\s+COLUMN\s+\S+\s+TYPE\b",
    "ALTER TABLE APPEND (ALTER TABLE APPEND)": r"\bALTER\s+TABLE\s+\S+\s+APPEND\b",
    # "VACUUM": cannot run inside a transaction block.
    "VACUUM (VACUUM)": r"\bVACUUM\b",
}


@pytest.mark.parametrize("rule", list(FORBIDDEN))
def test_no_statement_redshift_refuses_in_a_transaction(rule: str) -> None:
    pattern = re.compile(FORBIDDEN[rule], re.IGNORECASE)
    for name, statements in RENDERINGS.items():
        for statement in statements:
            code = re.sub(r"--[^\n]*", "", statement)
            assert not pattern.search(code), f"{name}: {rule}: {statement[:200]}"


# --- 4. COPY from Parquet ("COPY from columnar data formats") -------------------------------------

ROLE = "arn:aws:iam::123456789012:role/music-kpis-redshift-copy"
# The connection shapes the docs describe for music_kpis_redshift_copy, and the credentials
# S3ToRedshiftOperator falls back to without a role (keys, and keys with a session token).
COPY_CONNECTIONS = {
    "role_arn extra": {"conn_type": "aws", "extra": {"role_arn": ROLE}},
    "access keys": {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "secret-example"},
    "session credentials": {
        "conn_type": "aws",
        "login": "AKIDEXAMPLE",
        "password": "secret-example",
        "extra": {"aws_session_token": "token-example"},
    },
}


def copy_parameters(statement: str) -> tuple[str, list[str]]:
    """(data format, parameter keywords) of a COPY statement; quoted values are dropped."""
    normalized = " ".join(statement.split()).rstrip(";").strip()
    match = re.fullmatch(r"COPY \S+ FROM '[^']*' (.*)", normalized, re.IGNORECASE)
    assert match, normalized
    options = re.sub(r"'[^']*'", "", match.group(1))
    fmt = re.search(r"\bFORMAT\s+AS\s+(\w+)", options, re.IGNORECASE)
    keywords = re.sub(r"\bFORMAT\s+AS\s+\w+", "", options, flags=re.IGNORECASE).split()
    return (fmt.group(1).upper() if fmt else ""), [k.upper() for k in keywords]


def captured_copy(monkeypatch: pytest.MonkeyPatch, connection: dict) -> str:
    """The COPY the DAG's mapped copy_to_staging sends for one file, captured at the hook."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{REDSHIFT_COPY_CONN_ID.upper()}", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET", "music-processed")
    captured: list = []
    monkeypatch.setattr(RedshiftSQLHook, "run", lambda self, sql, autocommit=False, **kw: captured.append(sql))
    mapped = load_dag(monkeypatch, "redshift").get_task("copy_to_staging")
    job = {"table": "stg_streams", "s3_key": transformed_prefix("streams", "0123456789abcdef0123456789abcdef")}
    operator = S3ToRedshiftOperator(task_id="copy_one", **{**mapped.partial_kwargs, **job})
    operator.render_template_fields({"var": {"value": _Variables()}})
    operator.execute(context={})
    (statement,) = captured
    return statement


@pytest.mark.parametrize("shape", list(COPY_CONNECTIONS))
def test_copy_uses_only_parameters_allowed_for_parquet(monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    fmt, keywords = copy_parameters(captured_copy(monkeypatch, COPY_CONNECTIONS[shape]))
    assert fmt == "PARQUET"
    assert keywords and set(keywords) <= COLUMNAR_COPY_PARAMETERS, keywords


def test_copy_check_rejects_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the check sees when a copy connection has a region extra (the fault it guards)."""
    connection = {"conn_type": "aws", "extra": {"role_arn": ROLE, "region": "eu-west-1"}}
    _, keywords = copy_parameters(captured_copy(monkeypatch, connection))
    assert "REGION" in keywords and not set(keywords) <= COLUMNAR_COPY_PARAMETERS


def test_region_extra_fails_before_any_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """stage_batch, which every COPY waits for, names the connection and the reason."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{REDSHIFT_COPY_CONN_ID.upper()}",
        json.dumps({"conn_type": "aws", "extra": {"role_arn": ROLE, "region": "eu-west-1"}}),
    )
    dag = load_dag(monkeypatch, "redshift")
    assert "stage_batch" in dag.get_task("copy_to_staging").upstream_task_ids
    stage_batch = dag.get_task("stage_batch").python_callable
    with pytest.raises(AirflowFailException, match=rf"{REDSHIFT_COPY_CONN_ID}.*'region'.*REGION"):
        stage_batch(outcomes=[], skipped=[], run_id="manual__2026-11-24")


# --- 4b. UNLOAD of the KPI exports ("UNLOAD", "Unloading data to Amazon S3") -------------------

# The UNLOAD parameters export_kpis may send: CSV with a header, one file serially, replacing the
# previous run's, with a .csv extension. FIXEDWIDTH, DELIMITER, ADDQUOTES and ESCAPE do not go with
# CSV, and PARTITION BY or MANIFEST would change the object keys exports.py promises.
UNLOAD_PARAMETERS = {"CSV", "HEADER", "PARALLEL OFF", "ALLOWOVERWRITE", "EXTENSION"}


def captured_unload(monkeypatch: pytest.MonkeyPatch, job: dict) -> tuple[str, list[tuple[str, str]]]:
    """The UNLOAD export_kpis sends for one KPI table, and the S3 moves after it, captured at the hooks."""
    connection = json.dumps(COPY_CONNECTIONS["role_arn extra"])
    monkeypatch.setenv(f"AIRFLOW_CONN_{REDSHIFT_COPY_CONN_ID.upper()}", connection)
    monkeypatch.setenv("AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET", "music-processed")
    captured: list = []
    monkeypatch.setattr(RedshiftSQLHook, "run", lambda self, sql, autocommit=False, **kw: captured.append(sql))
    moves: list = []
    monkeypatch.setattr(S3Hook, "copy_object", lambda self, source, dest, **kw: moves.append((source, dest)))
    monkeypatch.setattr(S3Hook, "delete_objects", lambda self, bucket, keys: moves.append((keys[0], None)))
    mapped = load_dag(monkeypatch, "redshift").get_task("export_kpis")
    operator = KpiUnloadOperator(task_id="export_one", **{**mapped.partial_kwargs, **job})
    operator.render_template_fields({"var": {"value": _Variables()}})
    operator.execute(context={})
    (statement,) = captured
    return statement, moves


def unload_parts(statement: str) -> tuple[str, str, list[str]]:
    """(query, target, parameters) of an UNLOAD statement; a quoted value is dropped from its parameter."""
    normalized = " ".join(statement.split()).rstrip(";").strip()
    match = re.fullmatch(r"UNLOAD \(\$\$(.*)\$\$\) TO '([^']*)' credentials '[^']*' (.*)", normalized, re.I)
    assert match, normalized
    query, target, options = match.groups()
    options = re.sub(r"\s*'[^']*'", "", options)
    return query, target, re.findall(r"PARALLEL OFF|PARALLEL ON|[A-Z]+", options.upper())


@pytest.mark.parametrize("table", [kpi.name for kpi in kpi_tables()])
def test_unload_of_each_kpi_export(monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    (job,) = [j for j in export_jobs("redshift") if j["export_key"] == export_key(table)]
    statement, moves = captured_unload(monkeypatch, job)
    query, target, parameters = unload_parts(statement)
    # The provider un-doubles quotes in the query: it must reach Redshift as written.
    assert " ".join(query.split()) == " ".join(job["select_query"].split())
    assert unparsable_sections(query) == [] and unquoted_reserved_identifiers(query) == set()
    assert not re.search(r"\bLIMIT\b", query, re.I)  # "UNLOAD": no LIMIT in the outer SELECT
    assert set(parameters) <= UNLOAD_PARAMETERS and {"CSV", "HEADER", "PARALLEL OFF"} <= set(parameters)
    # PARALLEL OFF + EXTENSION 'csv': one object, <prefix>000.csv ("Unloading data to Amazon S3"),
    # moved to the stable key exports/<table>.csv.
    assert target == f"s3://music-processed/{job['s3_key']}"
    unloaded = job["s3_key"] + "000.csv"
    assert moves == [(unloaded, f"exports/{table}.csv"), (unloaded, None)]


def test_unload_check_finds_a_quote_the_provider_would_mangle() -> None:
    """The fault it guards: RedshiftToS3Operator sends a doubled quote ('') of the query undoubled."""
    query = "SELECT CASE WHEN x = ''a'' THEN 1 END FROM t"
    operator = RedshiftToS3Operator(task_id="t", s3_bucket="b", s3_key="k", select_query=query)
    sent, _, _ = unload_parts(operator._build_unload_query("c", query, "k", "CSV"))
    assert " ".join(sent.split()) != query


def failed_copy_with_diagnostics(
    monkeypatch: pytest.MonkeyPatch, load_errors: object
) -> tuple[S3ToRedshiftOperator, list[tuple[str, tuple]]]:
    """A mapped copy_to_staging whose COPY fails at the hook, its on_failure_callback run as Airflow
    runs it; the diagnostics query is captured at the hook, which answers with `load_errors`."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{REDSHIFT_COPY_CONN_ID.upper()}", json.dumps(COPY_CONNECTIONS["role_arn extra"]))
    monkeypatch.setenv("AIRFLOW_VAR_MUSIC_KPIS_PROCESSED_BUCKET", "music-processed")
    queries: list[tuple[str, tuple]] = []

    def failing_copy(self, sql, autocommit=False, **kwargs):
        raise psycopg2.errors.InternalError_("Load into table 'stg_streams' failed. Check 'sys_load_error_detail'.")

    def records(self, sql, parameters=None, **kwargs):
        queries.append((sql, parameters))
        if isinstance(load_errors, Exception):
            raise load_errors
        return load_errors

    monkeypatch.setattr(RedshiftSQLHook, "run", failing_copy)
    monkeypatch.setattr(RedshiftSQLHook, "get_records", records)
    mapped = load_dag(monkeypatch, "redshift").get_task("copy_to_staging")
    job = {"table": "stg_streams", "s3_key": transformed_prefix("streams", "0123456789abcdef0123456789abcdef")}
    operator = S3ToRedshiftOperator(task_id="copy_to_staging", **{**mapped.partial_kwargs, **job})
    operator.render_template_fields({"var": {"value": _Variables()}})
    with pytest.raises(psycopg2.errors.InternalError_):
        operator.execute(context={})
    ti = SimpleNamespace(task_id="copy_to_staging", start_date=COPY_STARTED)
    callbacks = operator.on_failure_callback
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        callback({"task": operator, "ti": ti})
    return operator, queries


COPY_STARTED = datetime.datetime(2026, 11, 24, 10, 30, tzinfo=datetime.UTC)


def test_failed_copy_logs_file_line_column_and_reason(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """SYS_LOAD_ERROR_DETAIL ("SYS_LOAD_ERROR_DETAIL", Amazon Redshift Database Developer Guide):
    file_name, line_number, column_name, error_code, error_message; it covers Redshift Serverless."""
    part = "s3://music-processed/transformed/streams/0123456789abcdef0123456789abcdef/part-00000.parquet"
    row = (part, 7, "listen_time", 1206, "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]")
    operator, queries = failed_copy_with_diagnostics(monkeypatch, [row])
    ((sql, parameters),) = queries
    assert sql == (SQL_DIR / "select_load_errors.sql").read_text()  # the file the gate checks
    assert parameters == (
        "s3://music-processed/transformed/streams/0123456789abcdef0123456789abcdef/%",
        COPY_STARTED.replace(tzinfo=None),
    )
    assert (
        f"COPY of s3://music-processed/{operator.s3_key} failed: file {part}, line 7, column listen_time: "
        "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS] (error code 1206)"
    ) in caplog.text


def test_failed_diagnostics_do_not_hide_the_copy_error(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    failed_copy_with_diagnostics(monkeypatch, psycopg2.OperationalError("connection lost"))
    assert "SYS_LOAD_ERROR_DETAIL could not be read: connection lost" in caplog.text


# --- 5. No two concurrent transactions on one table ("Isolation levels in Amazon Redshift") --------


def table_access(statements: list[str]) -> tuple[set[str], set[str]]:
    """(tables read, tables written) by one task's statements; its own temp tables left out."""
    reads: set[str] = set()
    writes: set[str] = set()
    temp: set[str] = set()
    for statement in statements:
        tree = sqlglot.parse_one(statement, read="redshift")
        properties = tree.args["properties"].expressions if tree.args.get("properties") else []
        if isinstance(tree, exp.Create) and any(isinstance(p, exp.TemporaryProperty) for p in properties):
            temp.add(tree.this.this.name if isinstance(tree.this, exp.Schema) else tree.this.name)
        target = tree.this if isinstance(tree, exp.Insert | exp.Delete | exp.Update | exp.Merge) else None
        if isinstance(tree, exp.Create | exp.Drop | exp.Alter):
            target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            writes.add(target.name)
        reads |= {table.name for table in tree.find_all(exp.Table)}
    return reads - temp, writes - temp


# Python tasks that open no warehouse connection: they reshape XComs (and publish to SNS).
WAREHOUSE_FREE_TASKS = {"recomputed_dates", "report_rejected_files"}


def warehouse_access(dag) -> dict[str, tuple[set[str], set[str]] | None]:
    """task_id -> (reads, writes); None where a task may touch any table (a Python task)."""
    steps = sql_task_statements(dag)
    access: dict[str, tuple[set[str], set[str]] | None] = {}
    for task in dag.tasks:
        if task.task_id in steps:
            access[task.task_id] = table_access(steps[task.task_id])
        elif task.task_id in WAREHOUSE_FREE_TASKS:
            access[task.task_id] = (set(), set())
        elif task.task_id == "copy_to_staging":
            access[task.task_id] = (set(), staging_tables())  # COPY appends; it reads no table
        elif task.task_id == "export_kpis":  # UNLOAD of each KPI table's export query: reads only
            access[task.task_id] = table_access([kpi.export_query("redshift") for kpi in kpi_tables()])
        elif task.task_id == "publish_report":  # the report's queries: reads only
            batch = batch_id_for("manual__x")
            access[task.task_id] = table_access([report_query(n, "redshift", batch_id=batch) for n in REPORT_QUERIES])
        else:
            access[task.task_id] = None
    return access


def concurrent_conflicts(dag, access: dict) -> list[str]:
    """Pairs of tasks with no path between them that touch a common table, one of them writing."""
    conflicts = []
    for a, b in itertools.combinations(sorted(access), 2):
        ta, tb = dag.get_task(a), dag.get_task(b)
        if b in ta.get_flat_relative_ids(upstream=False) or a in tb.get_flat_relative_ids(upstream=False):
            continue  # one runs after the other
        if access[a] is None or access[b] is None:
            conflicts.append(f"{a} || {b}: a Python task may touch any table")
            continue
        (ra, wa), (rb, wb) = access[a], access[b]
        shared = (wa & (rb | wb)) | (wb & ra)
        if shared:
            conflicts.append(f"{a} || {b}: {sorted(shared)}")
    return conflicts


@pytest.mark.parametrize("source", METADATA_SOURCES)
def test_tasks_that_can_run_at_once_share_no_table(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    monkeypatch.setenv("AIRFLOW__MUSIC_KPIS__METADATA_SOURCE", source)
    dag = load_dag(monkeypatch, "redshift")
    assert concurrent_conflicts(dag, warehouse_access(dag)) == []


def test_concurrency_check_finds_parallel_upserts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape of the fault it guards: both upserts read and write the ledger."""
    dag = load_dag(monkeypatch, "redshift")
    access = warehouse_access(dag)
    reads_users, writes_users = access["upsert_users"]
    reads_songs, writes_songs = access["upsert_songs"]
    assert "etl_file_ledger" in reads_users & writes_users & reads_songs & writes_songs
    dag.get_task("upsert_songs").upstream_task_ids.discard("upsert_users")
    dag.get_task("upsert_users").downstream_task_ids.discard("upsert_songs")
    dag.get_task("upsert_songs").set_upstream(dag.get_task("copy_to_staging"))
    assert any("etl_file_ledger" in c for c in concurrent_conflicts(dag, access))


# --- 6. The local warehouse runs SERIALIZABLE, like a provisioned cluster -------------------------


@pytest.mark.integration
def test_dag_warehouse_connection_is_serializable(stack) -> None:
    from include.music_kpis.airflow_compat import BaseHook
    from include.music_kpis.settings import WAREHOUSE_CONN_ID

    (level,) = BaseHook.get_hook(WAREHOUSE_CONN_ID).get_first("SHOW transaction_isolation")
    assert level == "serializable"


@pytest.mark.integration
def test_write_skew_aborts_locally_as_on_redshift(warehouse) -> None:
    """Two transactions that each read the ledger and then add to it, as the two upserts did."""
    setup = warehouse.connect()
    migrate(setup, "postgres")
    setup.close()
    first, second = warehouse.connect(), warehouse.connect()
    insert = (
        "INSERT INTO etl_file_ledger (file_id, dataset, raw_key, etag, outcome, rows_read, rows_quarantined,"
        " batch_id) SELECT %s, 'users', 'k', 'e', 'loaded', 1, 0, 'b' WHERE %s NOT IN (SELECT file_id FROM"
        " etl_file_ledger)"
    )
    try:
        with first.cursor() as a, second.cursor() as b:
            a.execute("SELECT count(*) FROM etl_file_ledger")
            b.execute("SELECT count(*) FROM etl_file_ledger")
            a.execute(insert, ("f1", "f1"))
            b.execute(insert, ("f2", "f2"))
            first.commit()
            with pytest.raises(psycopg2.errors.SerializationFailure):
                b.execute("SELECT count(*) FROM etl_file_ledger")
                second.commit()
    finally:
        first.close()
        second.close()


@pytest.mark.integration
def test_local_warehouse_orders_strings_by_their_utf8_bytes_as_redshift(warehouse) -> None:
    """AWS "Collation sequences": Redshift has no locale collation; ORDER BY, MIN, MAX and RANK use
    binary UTF-8 order. A locale's order would put 'a' before 'B' and 'é' near 'e'. The KPIs' tie
    breaks say COLLATE "C" themselves (the byte_order macro, for any WAREHOUSE_URL database); the
    local database's "C" collation makes every other comparison match too and lets PostgreSQL
    sort text keys by memcmp (local_stack.CREATE_DATABASE)."""
    words = ["b", "B", "a", "é", "e", "Z", "zz", "_x", "ß", "日本", "😀", "10", "9"]
    conn = warehouse.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT w FROM unnest(%s::text[]) AS w ORDER BY w", (words,))
            assert [row[0] for row in cur.fetchall()] == sorted(words, key=lambda w: w.encode())
            cur.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
            assert cur.fetchone()[0] == "C"
    finally:
        conn.close()


class _Variables:
    """Template accessor `var.value.<name>` reading AIRFLOW_VAR_* like Airflow does."""

    def __getattr__(self, name: str) -> str:
        import os

        return os.environ[f"AIRFLOW_VAR_{name.upper()}"]


# --- 7. Costs that follow the batch, without indexes (docs/warehouse-design.md) -------------------


def test_changed_songs_find_their_dates_without_reading_the_fact_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redshift has no index on streams.track_id: a join there would scan the whole history."""
    access = warehouse_access(load_dag(monkeypatch, "redshift"))
    reads, _ = access["upsert_songs"]
    assert "streams" not in reads and "song_play_dates" in reads
    _, writes = access["load_streams"]
    assert "song_play_dates" in writes
