"""Upgrading a table made by the Java DTC library in place, and racing init_schema."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from dagster_dtc import Status, TaskStore
from dagster_dtc.schema import LATEST_VERSION, VERSION_TABLE, migrations

from .core_support import execute, init_schema_worker, raw_rows, report_to, utc

DAY = timedelta(days=1)
D1 = utc(2026, 11, 23)

# The table exactly as lfeagan/distributed-task-manager creates it (written out here on purpose: if
# the migration's copy drifted from the Java one, this test would still use the real thing).
JAVA_DDL = """
CREATE TABLE {table} (
    name            varchar(32)  NOT NULL,
    bucket_time     timestamptz  NOT NULL,
    bucket_interval interval     NOT NULL,
    status          varchar(16)  NOT NULL,
    created_by      varchar(32)  NOT NULL,
    created_at      timestamptz  NOT NULL,
    acquired_by     varchar(32),
    acquired_at     timestamptz,
    completed_at    timestamptz,
    fail_count      int DEFAULT 0,
    message         text,
    PRIMARY KEY (name, bucket_time)
)
"""

ALL_MIGRATIONS = [f"{m.version:04d}_{m.name}" for m in migrations()]

JAVA_COLUMNS = [
    "name",
    "bucket_time",
    "bucket_interval",
    "status",
    "created_by",
    "created_at",
    "acquired_by",
    "acquired_at",
    "completed_at",
    "fail_count",
    "message",
]


@pytest.fixture
def java_table(database_url: str) -> str:
    table = f"java_{uuid.uuid4().hex[:10]}"
    execute(database_url, JAVA_DDL.format(table=table))
    rows: list[tuple[Any, ...]] = [
        (
            "call_mom",
            D1,
            "1 day",
            "COMPLETE",
            "java-1",
            D1,
            "java-1",
            D1 + timedelta(hours=1),
            D1 + timedelta(hours=2),
            0,
            "called",
        ),
        ("call_mom", D1 + DAY, "1 day", "SKIP", "java-1", D1, None, None, None, None, "holiday"),
        ("call_mom", D1 + 2 * DAY, "1 day", "ACQUIRED", "java-1", D1, "java-2", D1 + 2 * DAY, None, 1, None),
        ("call_mom", D1 + 3 * DAY, "1 day", "AVAILABLE", "java-1", D1, None, None, None, None, None),
        ("call_mom", D1 + 4 * DAY, "1 day", "AVAILABLE", "java-1", D1, None, None, None, 3, "failed thrice"),
        ("water_plants", D1, "7 days", "AVAILABLE", "java-1", D1, None, None, None, None, None),
    ]
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s::interval, %s, %s, %s, %s, %s, %s, %s, %s)").format(
                sql.Identifier(table)
            ),
            rows,
        )
    return table


def test_java_table_is_upgraded_in_place(java_table: str, database_url: str) -> None:
    before = raw_rows(database_url, java_table)
    assert len(before) == 6 and sum(r["fail_count"] is None for r in before) == 3

    store = TaskStore(database_url, java_table, lease_seconds=5, backoff_base=0.0, backoff_max=0.0)
    try:
        applied = store.init_schema()
        assert applied == ALL_MIGRATIONS and ALL_MIGRATIONS[:2] == [
            "0001_java_table",
            "0002_claims_and_leases",
        ]
        assert store.init_schema() == []

        after = raw_rows(database_url, java_table)
        assert len(after) == 6
        for old, new in zip(before, after, strict=True):
            for column in JAVA_COLUMNS:
                if column == "fail_count":
                    assert new[column] == (old[column] or 0)
                else:
                    assert new[column] == old[column], column
            assert (new["generation"], new["revision"], new["attempt"]) == (0, 0, 0)
            assert new["max_attempts"] is None and new["not_before"] is None
            assert new["lease_expires_at"] is None and new["reopen_requested"] is False

        with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
            columns = {
                r["column_name"]: r
                for r in conn.execute(
                    "SELECT column_name, data_type, is_nullable, column_default "
                    "FROM information_schema.columns WHERE table_name = %s",
                    (java_table,),
                )
            }
            versions = conn.execute(
                sql.SQL("SELECT version FROM {} WHERE table_name = %s ORDER BY version").format(
                    sql.Identifier(VERSION_TABLE)
                ),
                (java_table,),
            ).fetchall()
        assert [v["version"] for v in versions] == list(range(1, LATEST_VERSION + 1))
        for new_column in (
            "generation",
            "revision",
            "attempt",
            "max_attempts",
            "not_before",
            "lease_expires_at",
            "reopen_requested",
            "reopened_at",
        ):
            assert new_column in columns
        assert columns["name"]["data_type"] == "text" and columns["fail_count"]["is_nullable"] == "NO"

        # records parse, intervals read back as ISO-8601
        tasks = store.query("call_mom")
        assert [t.status for t in tasks] == [
            Status.COMPLETE,
            Status.SKIP,
            Status.ACQUIRED,
            Status.AVAILABLE,
            Status.AVAILABLE,
        ]
        assert {t.bucket_interval for t in tasks} == {"P1D"}
        assert store.query("water_plants")[0].window_end == D1 + 7 * DAY

        # claims work: the AVAILABLE windows in order; the Java-held one is left to its holder
        claims = store.claim("call_mom", limit=10, worker="python")
        assert [c.bucket_time for c in claims] == [D1 + 3 * DAY, D1 + 4 * DAY]
        assert [c.generation for c in claims] == [1, 1]
        for c in claims:
            assert c.complete().status is Status.COMPLETE
        # new windows for the same name, with the same interval, fit in; longer names than varchar(32)
        assert store.create_windows("call_mom", "P1D", D1, D1 + 7 * DAY) == 2
        assert store.create_window("a_name_longer_than_the_java_limit_of_32", D1, "P1D")
        # the Java-held window can be reopened by plain SQL (no lease: it is taken away at once)
        execute(
            database_url,
            f"UPDATE {java_table} SET status = 'AVAILABLE' WHERE bucket_time = %s",
            (D1 + 2 * DAY,),
        )
        [java_window] = store.claim("call_mom", worker="python")
        assert java_window.bucket_time == D1 + 2 * DAY and java_window.generation == 2
        java_window.complete()
        # and the finished Java rows too
        assert store.reopen("call_mom", D1, D1 + 2 * DAY, reason="backfill") == 2
        assert [c.bucket_time for c in store.claim("call_mom", limit=2)] == [D1, D1 + DAY]
    finally:
        store.close()
        execute(database_url, f"DROP TABLE {java_table}")


def test_status_check_constraint_after_upgrade(store: TaskStore, database_url: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(database_url, f"UPDATE {store.table.name} SET status = 'DONE'")
    assert store.get("call_mom", D1).status is Status.AVAILABLE  # type: ignore[union-attr]


def _assert_applied_once(url: str, table: str, results: list[list[str]]) -> None:
    flat = [name for r in results for name in r]
    assert sorted(flat) == ALL_MIGRATIONS, results
    assert sum(1 for r in results if r) == 1, results
    with psycopg.connect(url, autocommit=True) as conn:
        versions = conn.execute(
            sql.SQL(
                "SELECT version, count(*) FROM {} WHERE table_name = %s GROUP BY version ORDER BY version"
            ).format(sql.Identifier(VERSION_TABLE)),
            (table,),
        ).fetchall()
    assert versions == [(v, 1) for v in range(1, LATEST_VERSION + 1)]
    store = TaskStore(url, table)
    try:
        assert store.create_window("call_mom", D1, "P1D")
        [claim] = store.claim("call_mom")
        assert claim.complete().status is Status.COMPLETE
    finally:
        store.close()
    execute(url, f"DROP TABLE {table}")


def test_init_schema_racing_threads(database_url: str) -> None:
    table = f"race_{uuid.uuid4().hex[:10]}"
    results: list[list[str]] = []
    errors: list[BaseException] = []
    go = threading.Barrier(6)

    def run() -> None:
        try:
            go.wait()
            results.append(init_schema_worker(database_url, table))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    _assert_applied_once(database_url, table, results)


def test_init_schema_racing_processes(database_url: str) -> None:
    table = f"race_{uuid.uuid4().hex[:10]}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=report_to, args=(queue, init_schema_worker, database_url, table)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [queue.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
    _assert_applied_once(database_url, table, [value for _, value in outcomes])


def test_schema_qualified_table_and_case_folding(database_url: str) -> None:
    schema_name = f"ops_{uuid.uuid4().hex[:8]}"
    store = TaskStore(database_url, f"{schema_name.upper()}.DTC_Tasks")
    try:
        assert store.table.key == f"{schema_name}.dtc_tasks"
        assert store.init_schema() == ALL_MIGRATIONS
        store.create_window("call_mom", D1, "P1D")
        # the same table under its plain-SQL (folded) name
        with psycopg.connect(database_url, autocommit=True) as conn:
            assert conn.execute(f"SELECT count(*) FROM {schema_name}.dtc_tasks").fetchone() == (1,)
        # a table of the same name in the default schema is another table
        assert TaskStore(database_url, "dtc_tasks").table.key == "dtc_tasks"
    finally:
        store.close()
        execute(database_url, f"DROP SCHEMA {schema_name} CASCADE")


def test_init_schema_recreates_a_dropped_table(store: TaskStore, database_url: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    assert store.init_schema() == []
    execute(database_url, f"DROP TABLE {store.table.name}")
    # the recorded versions no longer describe anything: start over instead of doing nothing
    assert store.init_schema() == ALL_MIGRATIONS
    assert store.query() == []
    assert store.create_window("call_mom", D1, "P1D")
    [claim] = store.claim("call_mom")
    assert claim.complete().status is Status.COMPLETE
