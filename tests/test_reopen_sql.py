"""Reopening windows with a plain SQL UPDATE from another system, touching no column but status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from dagster_dtc import StaleClaimError, Status, TaskStore

from .core_support import execute, raw_row, utc

DAY = timedelta(days=1)
D1 = utc(2026, 12, 1)


def reopen_by_sql(url: str, table: str, name: str, start: datetime, end: datetime) -> int:
    """Exactly what an external system runs: status only, no DTC columns."""
    return execute(
        url,
        f"UPDATE {table} SET status = 'AVAILABLE' WHERE name = %s AND bucket_time >= %s AND bucket_time < %s",
        (name, start, end),
    )


@pytest.fixture
def other(store: TaskStore, database_url: str) -> Iterator[TaskStore]:
    s = TaskStore(database_url, store.table.name, lease_seconds=5, backoff_base=0.0, backoff_max=0.0)
    try:
        yield s
    finally:
        s.close()


def test_sql_reopen_of_finished_windows(store: TaskStore, database_url: str) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 4 * DAY)
    claims = store.claim("call_mom", limit=4, worker="w1")
    claims[0].complete("done")
    claims[1].skip("nothing to do")
    claims[2].complete("done")
    claims[3].complete("done")
    before = store.get("call_mom", D1 + 3 * DAY)

    assert reopen_by_sql(database_url, store.table.name, "call_mom", D1, D1 + 3 * DAY) == 3
    tasks = store.query("call_mom")
    assert [t.status for t in tasks] == [Status.AVAILABLE] * 3 + [Status.COMPLETE]
    assert store.get("call_mom", D1 + 3 * DAY) == before  # outside the range: untouched
    for t, was in zip(tasks[:3], ("COMPLETE", "SKIP", "COMPLETE"), strict=True):
        assert t.message == f"reopened (was {was})"
        assert t.reopened_at is not None and t.attempt == 0 and not t.reopen_requested
        assert t.lease_expires_at is None and t.not_before is None

    again = store.claim("call_mom", limit=10, worker="w2")
    assert [(c.bucket_time, c.generation) for c in again] == [(D1 + i * DAY, 2) for i in range(3)]
    for c in again:
        assert c.complete().status is Status.COMPLETE
    # the old claims stay dead
    with pytest.raises(StaleClaimError):
        claims[0].complete()


def test_sql_reopen_of_an_exhausted_window_resets_its_budget(store: TaskStore, database_url: str) -> None:
    store.create_window("flaky", D1, "P1D", max_attempts=1)
    [claim] = store.claim("flaky")
    claim.fail("down")
    assert store.claim("flaky") == []
    assert reopen_by_sql(database_url, store.table.name, "flaky", D1, D1 + DAY) == 1
    [claim] = store.claim("flaky")
    assert claim.attempt == 1 and claim.generation == 2


def test_sql_reopen_of_a_held_window(store: TaskStore, other: TaskStore, database_url: str) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 2 * DAY)
    [held] = store.claim("call_mom", worker="holder")
    assert held.bucket_time == D1
    before = raw_row(database_url, store.table.name, "call_mom", D1)
    assert reopen_by_sql(database_url, store.table.name, "call_mom", D1, D1 + DAY) == 1

    task = store.get("call_mom", D1)
    assert task is not None
    assert task.status is Status.ACQUIRED and task.reopen_requested
    assert task.generation == held.generation and task.acquired_by == "holder"
    assert task.message == "reopen requested while held by holder"
    assert task.lease_expires_at == before["lease_expires_at"]  # type: ignore[index]

    # nobody else can take it while it is held
    assert [c.bucket_time for c in other.claim("call_mom", limit=5, worker="other")] == [D1 + DAY]
    with pytest.raises(Exception, match="held by holder"):
        other.acquire("call_mom", D1, worker="other")
    # the holder learns about it on its next heartbeat and keeps the window
    assert held.heartbeat() is True

    result = held.complete("processed the old data")
    assert result.status is Status.AVAILABLE
    assert result.completed_at is None and result.attempt == 0 and not result.reopen_requested
    assert result.reopened_at is not None
    assert "reopened while holder held it" in (result.message or "")
    assert "will run again" in (result.message or "")

    # then it is processed again, with a new token, and this time it completes
    [rerun] = other.claim("call_mom", worker="other")
    assert rerun.bucket_time == D1 and rerun.generation == held.generation + 1
    assert rerun.complete("processed the late data").status is Status.COMPLETE
    assert store.get("call_mom", D1).status is Status.COMPLETE  # type: ignore[union-attr]


@pytest.mark.parametrize("finish", ["skip", "fail"])
def test_sql_reopen_while_held_then_skip_or_fail(store: TaskStore, database_url: str, finish: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    [held] = store.claim("call_mom", worker="holder")
    reopen_by_sql(database_url, store.table.name, "call_mom", D1, D1 + DAY)
    result = getattr(held, finish)("whatever")
    assert result.status is Status.AVAILABLE and not result.reopen_requested
    assert result.not_before is None and result.attempt == 0
    [again] = store.claim("call_mom")
    assert again.generation == held.generation + 1


def test_sql_reopen_of_a_held_window_whose_holder_dies(store: TaskStore, database_url: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    [held] = store.claim("call_mom", worker="holder", lease_seconds=0.3)
    reopen_by_sql(database_url, store.table.name, "call_mom", D1, D1 + DAY)
    time.sleep(0.5)
    # lease gone: the holder is reaped and the window is claimable at once, budget reset
    assert store.reap("call_mom") == 1
    task = store.get("call_mom", D1)
    assert task is not None and task.status is Status.AVAILABLE and task.fail_count == 1
    assert task.not_before is None and task.attempt == 0 and not task.reopen_requested
    assert (task.message or "").startswith("lease expired: holder stopped renewing claim 1")
    [again] = store.claim("call_mom", worker="next")
    assert again.generation == held.generation + 1 and again.attempt == 1
    with pytest.raises(StaleClaimError):
        held.complete()


def test_sql_reopen_of_an_expired_holder_fences_it(store: TaskStore, database_url: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    [held] = store.claim("call_mom", worker="holder", lease_seconds=0.2)
    time.sleep(0.4)
    # not reaped yet (no claim ran), but its lease is over: the reopen takes the window from it
    assert store.get("call_mom", D1).status is Status.ACQUIRED  # type: ignore[union-attr]
    reopen_by_sql(database_url, store.table.name, "call_mom", D1, D1 + DAY)
    task = store.get("call_mom", D1)
    assert task is not None and task.status is Status.AVAILABLE and task.generation == held.generation + 1
    assert task.message == "reopened (was ACQUIRED)"
    with pytest.raises(StaleClaimError):
        held.complete()


def test_other_external_updates(store: TaskStore, database_url: str) -> None:
    """Plain-SQL updates that do not touch status leave the DTC columns alone; status updates to
    COMPLETE/SKIP from outside fence the holder."""
    table = store.table.name
    store.create_windows("call_mom", "P1D", D1, D1 + 3 * DAY)
    a, b = store.claim("call_mom", limit=2, worker="holder")
    before = raw_row(database_url, table, "call_mom", D1)
    execute(database_url, f"UPDATE {table} SET message = 'note from ops' WHERE name = 'call_mom'")
    after = raw_row(database_url, table, "call_mom", D1)
    assert after is not None and before is not None
    assert after["message"] == "note from ops"
    assert {k: v for k, v in after.items() if k != "message"} == {
        k: v for k, v in before.items() if k != "message"
    }
    assert a.complete().status is Status.COMPLETE

    execute(
        database_url,
        f"UPDATE {table} SET status = 'SKIP' WHERE name = 'call_mom' AND bucket_time = %s",
        (b.bucket_time,),
    )
    task = store.get("call_mom", b.bucket_time)
    assert task is not None and task.status is Status.SKIP and task.generation == b.generation + 1
    assert task.completed_at is not None and task.lease_expires_at is None
    with pytest.raises(StaleClaimError, match="it is now SKIP"):
        b.complete()

    # a non-DTC writer acquiring a window (the Java library does this) gets a fresh token
    execute(
        database_url,
        f"UPDATE {table} SET status = 'ACQUIRED', acquired_by = 'java' "
        "WHERE name = 'call_mom' AND bucket_time = %s",
        (D1 + 2 * DAY,),
    )
    task = store.get("call_mom", D1 + 2 * DAY)
    assert task is not None and task.status is Status.ACQUIRED and task.generation == 1
    assert task.acquired_by == "java" and task.acquired_at is not None and task.lease_expires_at is None
    assert store.claim("call_mom") == []
