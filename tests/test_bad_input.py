"""Bad input is refused before it reaches the database, with a message that says what would be right;
hostile strings that are valid data are stored verbatim and harm nothing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from dagster_dtc import (
    DatabaseUnavailableError,
    InvalidDatabaseURLError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidIntervalError,
    InvalidTimeError,
    Status,
    TaskStore,
)
from dagster_dtc.database import redact
from dagster_dtc.store import MAX_NAME_LENGTH

from .core_support import execute, utc

D1 = utc(2026, 12, 1)
DAY = timedelta(days=1)
SECRET = "hunter2xyz"


# -- database URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://x", "is not PostgreSQL; expected postgresql://user:password@host/dbname"),
        ("sqlite:///tmp/dtc.db", "is not PostgreSQL"),
        (f"mysql://dtc:{SECRET}@db/dtc", "is not PostgreSQL"),
        ("not a url", "cannot be parsed"),
        (f"postgresql://dtc:{SECRET}@db:notaport/dtc", "cannot be parsed"),
        (f"host=db password={SECRET} dbname=dtc", "cannot be parsed"),
        ("   ", "database URL is empty"),
    ],
)
def test_bad_urls(url: str, expected: str) -> None:
    with pytest.raises(InvalidDatabaseURLError, match=expected) as info:
        TaskStore(url, "dtc_tasks")
    assert SECRET not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://dtc:{SECRET}@127.0.0.1:1/dtc",
        f"postgresql://dtc:{SECRET}@/dtc?host=/nonexistent-dtc-socket-dir",
    ],
)
def test_unreachable_server(url: str) -> None:
    store = TaskStore(url, "dtc_tasks")
    assert SECRET not in store.safe_url
    started = time.monotonic()
    for call in (store.init_schema, lambda: store.claim("call_mom"), lambda: store.get("call_mom", D1)):
        with pytest.raises(
            DatabaseUnavailableError, match="cannot connect to PostgreSQL at postgresql://dtc:\\*\\*\\*@"
        ) as info:
            call()
        assert SECRET not in str(info.value)
        assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)
    assert time.monotonic() - started < 10
    store.close()


def test_redact_hides_passwords_in_every_spelling() -> None:
    for url in (
        f"postgresql://dtc:{SECRET}@db:5432/dtc",
        f"postgresql+psycopg://dtc:{SECRET}@db/dtc",
        f"postgresql://dtc:{SECRET}@db:bad/dtc",
        f"postgresql://dtc:pa@{SECRET}@db/dtc",  # unescaped '@' in the password
        f"postgresql://dtc@db/dtc?password={SECRET}&sslmode=require",
        f"host=db password={SECRET} dbname=dtc",
        f"host=db password='{SECRET} x' dbname=dtc",
    ):
        shown = redact(url)
        assert SECRET not in shown, shown
        assert "***" in shown
    assert redact("postgresql://dtc:pw@db:5432/dtc") == "postgresql://dtc:***@db:5432/dtc"
    assert redact("postgresql://dtc@db/dtc") == "postgresql://dtc@db/dtc"


# -- table names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        "dtc_tasks; DROP TABLE dtc_tasks",
        'dtc"tasks',
        "dtc'tasks",
        "dtc tasks",
        "dtc-tasks",
        "1dtc",
        "",
        "a.b.c",
        ".dtc",
        "dtc.",
        "tâches",
        "dtc_tasks--",
        "dtc\x00tasks",
        "x" * 51,
        "ops." + "x" * 51,
    ],
)
def test_hostile_or_bad_table_names(table: str, database_url: str) -> None:
    with pytest.raises(InvalidIdentifierError, match="table name") as info:
        TaskStore(database_url, table)
    assert "letters, digits and underscores" in str(info.value) or "too long" in str(info.value)


def test_table_name_types_and_limits(database_url: str) -> None:
    with pytest.raises(InvalidIdentifierError, match="must be a string"):
        TaskStore(database_url, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifierError, match="keep each part to 50 characters"):
        TaskStore(database_url, "y" * 51)
    assert TaskStore(database_url, "y" * 50).table.name == "y" * 50


def test_longest_table_name_works_end_to_end(database_url: str) -> None:
    # derived object names (index, trigger, functions) must still fit PostgreSQL's 63 bytes
    table = "t" * 50
    store = TaskStore(database_url, table)
    try:
        store.init_schema()
        store.create_window("call_mom", D1, "P1D")
        [claim] = store.claim("call_mom")
        claim.complete()
        assert store.get("call_mom", D1).status is Status.COMPLETE  # type: ignore[union-attr]
    finally:
        store.close()
        execute(database_url, f"DROP TABLE {table} CASCADE")


# -- window names ------------------------------------------------------------------------------


HOSTILE_NAMES = [
    "x'); DROP TABLE dtc_tasks; --",
    'x"); DELETE FROM dtc_tasks; --',
    "'; UPDATE {table} SET status = 'SKIP'; --",
    "%s",
    "%(name)s",
    "{table}",
    "$$; DROP SCHEMA public CASCADE; $$",
    "back\\slash",
    "line\nbreak\ttab",
    " leading and trailing spaces ",
]


def test_hostile_window_names_are_stored_verbatim(store: TaskStore, database_url: str) -> None:
    store.create_windows("bystander", "P1D", D1, D1 + 3 * DAY)
    [keep] = store.claim("bystander")
    keep.complete()
    names = [*HOSTILE_NAMES, f"x'); DROP TABLE {store.table.name}; --"]
    for name in names:
        assert store.create_windows(name, "P1D", D1, D1 + 2 * DAY) == 2
        assert [t.name for t in store.query(name)] == [name, name]
        [claim] = store.claim(name)
        assert claim.name == name
        claim.complete("ok")
        assert store.reopen(name, D1, D1 + DAY, reason=name) == 1
        task = store.get(name, D1)
        assert task is not None and task.message == name and task.status is Status.AVAILABLE
        assert store.stats(name)[0]["name"] == name
        assert store.explain_empty_claim(name).startswith("2 windows of")
        assert store.set_status(name, [D1, D1 + DAY], Status.SKIP, "done") == 2
    # everything is still there, the bystander's rows untouched
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT name, count(*) FROM {} GROUP BY name").format(store.table.identifier)
        ).fetchall()
    assert dict(rows) == {**{n: 2 for n in names}, "bystander": 3}
    assert [t.status for t in store.query("bystander")] == [
        Status.COMPLETE,
        Status.AVAILABLE,
        Status.AVAILABLE,
    ]


def test_injection_into_a_real_dtc_tasks_table_harms_nothing(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        existed = conn.execute("SELECT to_regclass('dtc_tasks') IS NOT NULL").fetchone() == (True,)
    store = TaskStore(database_url, "dtc_tasks")
    evil = "x'); DROP TABLE dtc_tasks; --"
    try:
        store.init_schema()
        store.create_window("bystander_of_dtc_tasks", D1, "P1D")
        store.create_window(evil, D1, "P1D")
        store.claim(evil)[0].complete(evil)
        assert store.get("bystander_of_dtc_tasks", D1) is not None
        assert store.get(evil, D1).message == evil  # type: ignore[union-attr]
    finally:
        store.close()
        if existed:
            execute(
                database_url, "DELETE FROM dtc_tasks WHERE name IN (%s, %s)", ("bystander_of_dtc_tasks", evil)
            )
        else:
            execute(database_url, "DROP TABLE dtc_tasks")


def test_unicode_names(store: TaskStore) -> None:
    names = [
        "звонок_маме",
        "電話する",
        "📞 mom",
        "café",
        "cafe\u0301",
        "مرحبا",
        "é" * MAX_NAME_LENGTH,
        "📞" * MAX_NAME_LENGTH,
    ]
    for name in names:
        assert store.create_window(name, D1, "PT1H")
        [claim] = store.claim(name, worker=f"worker-{name[:20]}")
        assert claim.name == name
        assert claim.complete(f"done: {name}").message == f"done: {name}"
    # composed and decomposed forms are different names: nothing is normalised behind the caller's back
    assert store.get("café", D1) != store.get("cafe\u0301", D1)
    assert {t.name for t in store.query(statuses=["COMPLETE"])} == set(names)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x" * (MAX_NAME_LENGTH + 1), f"the limit is {MAX_NAME_LENGTH}"),
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        (42, "must be a non-empty string"),
        ("nul\x00byte", "NUL character"),
    ],
)
def test_bad_window_names(store: TaskStore, name: object, expected: str) -> None:
    calls = [
        lambda: store.create_window(name, D1, "P1D"),  # type: ignore[arg-type]
        lambda: store.create_windows(name, "P1D", D1, D1 + DAY),  # type: ignore[arg-type]
        lambda: store.claim(name),  # type: ignore[arg-type]
        lambda: store.get(name, D1),  # type: ignore[arg-type]
        lambda: store.acquire(name, D1),  # type: ignore[arg-type]
        lambda: store.reopen(name, D1, D1 + DAY),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=expected):
            call()
    assert store.query() == []


def test_bad_worker_and_messages(store: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    with pytest.raises(InvalidInputError, match="worker"):
        store.claim("call_mom", worker="w" * (MAX_NAME_LENGTH + 1))
    with pytest.raises(InvalidInputError, match="worker"):
        store.claim("call_mom", worker="a\x00b")
    [claim] = store.claim("call_mom")
    with pytest.raises(InvalidInputError, match="message must be a string"):
        claim.complete(42)  # type: ignore[arg-type]
    assert claim.complete("fine").status is Status.COMPLETE


# -- times, intervals, settings ----------------------------------------------------------------


def test_naive_and_misaligned_times(store: TaskStore) -> None:
    naive = datetime(2026, 12, 1)
    for call in (
        lambda: store.create_window("call_mom", naive, "P1D"),
        lambda: store.create_windows("call_mom", "P1D", naive, D1 + DAY),
        lambda: store.get("call_mom", naive),
        lambda: store.acquire("call_mom", naive),
        lambda: store.reopen("call_mom", naive, D1 + DAY),
        lambda: store.set_status("call_mom", [naive], Status.SKIP),
        lambda: store.query("call_mom", acquired_start=naive),
        lambda: store.find_or_create_and_acquire("call_mom", "P1D", now=naive),
    ):
        with pytest.raises(InvalidTimeError, match="has no time zone; pass an aware datetime"):
            call()
    with pytest.raises(
        InvalidTimeError, match=r"not on the PT1H grid .* starts at 2026-12-01T00:00:00\+00:00"
    ):
        store.create_window("call_mom", D1 + timedelta(minutes=30), "PT1H")
    with pytest.raises(InvalidTimeError, match="must be after start"):
        store.create_windows("call_mom", "P1D", D1 + DAY, D1)
    with pytest.raises(InvalidInputError, match="must be after start"):
        store.skip("call_mom", D1 + DAY, D1)
    assert store.query() == []


@pytest.mark.parametrize("interval", ["PT0S", "-P1D", "1 day", "P1M1D", "", "daily"])
def test_bad_intervals_through_the_store(store: TaskStore, interval: str) -> None:
    with pytest.raises(InvalidIntervalError, match=r"P\w*"):
        store.create_windows("call_mom", interval, D1, D1 + DAY)
    with pytest.raises(InvalidIntervalError):
        store.create_window("call_mom", D1, interval)
    with pytest.raises(InvalidIntervalError):
        store.find_or_create_and_acquire("call_mom", interval)
    assert store.query() == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"lease_seconds": 0}, "lease_seconds must be positive"),
        ({"lease_seconds": -5}, "lease_seconds must be positive"),
        ({"lease_seconds": float("nan")}, "lease_seconds must be positive"),
        ({"max_attempts": 0}, "max_attempts must be a positive integer or None"),
        ({"max_attempts": 2.5}, "max_attempts must be a positive integer or None"),
        ({"backoff_base": -1.0}, "0 <= backoff_base <= backoff_max"),
        ({"backoff_base": 10.0, "backoff_max": 5.0}, "0 <= backoff_base <= backoff_max"),
    ],
)
def test_bad_store_settings(database_url: str, kwargs: dict, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected):
        TaskStore(database_url, "dtc_tasks", **kwargs)


@pytest.mark.parametrize("limit", [-1, "10", 2.5, True])
def test_bad_query_limit(store: TaskStore, limit: object) -> None:
    with pytest.raises(InvalidInputError, match="limit must be None or an integer >= 0"):
        store.query(limit=limit)  # type: ignore[arg-type]
    assert store.query(limit=0) == []
