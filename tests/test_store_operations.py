"""TaskStore operations on a real PostgreSQL table, one concern per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from dagster_dtc import (
    IntervalMismatchError,
    InvalidInputError,
    InvalidTimeError,
    StaleClaimError,
    Status,
    TaskStore,
    WindowHeldError,
    WindowNotAvailableError,
    WindowNotFoundError,
)

from .core_support import raw_row, utc, wait_for

DAY = timedelta(days=1)
D1 = utc(2026, 12, 1)


def days(n: int) -> list:
    return [D1 + i * DAY for i in range(n)]


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


@pytest.fixture
def other(store: TaskStore, url: str) -> Iterator[TaskStore]:
    """A second worker's store on the same table."""
    s = TaskStore(url, store.table.name, lease_seconds=5, backoff_base=0.0, backoff_max=0.0)
    try:
        yield s
    finally:
        s.close()


# -- creating ----------------------------------------------------------------------------------


def test_create_window_is_idempotent(store: TaskStore) -> None:
    assert store.create_window("call_mom", D1, "P1D", worker="seeder") is True
    assert store.create_window("call_mom", D1, "P1D", worker="someone-else") is False
    task = store.get("call_mom", D1)
    assert task is not None
    assert task.status is Status.AVAILABLE
    assert task.bucket_interval == "P1D"
    assert task.created_by == "seeder"
    assert task.created_at is not None
    assert (task.fail_count, task.generation, task.attempt, task.max_attempts) == (0, 0, 0, 10)
    assert task.acquired_by is None and task.lease_expires_at is None and not task.reopen_requested
    assert task.window_start == D1 and task.window_end == D1 + DAY
    assert store.get("call_mom", D1 + DAY) is None


def test_create_window_checks_the_grid_and_the_interval(store: TaskStore) -> None:
    with pytest.raises(
        InvalidTimeError, match=r"the window containing it starts at 2026-12-01T00:00:00\+00:00"
    ):
        store.create_window("call_mom", D1 + timedelta(hours=6), "P1D")
    assert store.create_window("early", D1 + timedelta(hours=6), "P1D", origin=utc(2026, 1, 1, 6))
    store.create_window("call_mom", D1, "P1D")
    with pytest.raises(IntervalMismatchError, match="already use interval P1D; cannot add PT1H"):
        store.create_window("call_mom", D1 + timedelta(hours=1), "PT1H")
    with pytest.raises(IntervalMismatchError):
        store.create_windows("call_mom", "P1W", D1, D1 + 30 * DAY)
    # the same interval spelled differently is the same interval
    assert store.create_window("call_mom", D1 + DAY, "PT24H")
    assert [t.window_end - t.window_start for t in store.query("call_mom")] == [DAY, DAY]


def test_create_windows_counts_new_rows_and_leaves_existing_ones_alone(store: TaskStore, url: str) -> None:
    assert store.create_windows("call_mom", "P1D", D1, D1 + 7 * DAY) == 7
    [claim] = store.claim("call_mom", worker="w1")
    done = claim.complete("called")
    before = raw_row(url, store.table.name, "call_mom", D1)
    # overlapping range: only the 3 new days are created, Dec 1 keeps its state and revision
    assert store.create_windows("call_mom", "P1D", D1, D1 + 10 * DAY, worker="late") == 3
    assert store.create_windows("call_mom", "P1D", D1, D1 + 10 * DAY) == 0
    assert raw_row(url, store.table.name, "call_mom", D1) == before
    assert store.get("call_mom", D1) == done
    tasks = store.query("call_mom")
    assert [t.bucket_time for t in tasks] == days(10)
    assert [t.created_by for t in tasks[7:]] == ["late"] * 3
    # a range that holds no bucket creates nothing
    assert store.create_windows("call_mom", "P1D", D1 + timedelta(hours=1), D1 + timedelta(hours=2)) == 0
    # the range end is exclusive, the start is rounded up onto the grid
    assert store.create_windows("hourly", "PT1H", D1 + timedelta(minutes=30), D1 + timedelta(hours=3)) == 2
    assert [t.bucket_time for t in store.query("hourly")] == [
        D1 + timedelta(hours=1),
        D1 + timedelta(hours=2),
    ]
    # calendar months land on the 1st in UTC
    assert store.create_windows("monthly", "P1M", utc(2026, 1, 15), utc(2027, 1, 1)) == 11
    monthly = store.query("monthly")
    assert [t.bucket_time for t in monthly] == [utc(2026, m, 1) for m in range(2, 13)]
    assert monthly[0].window_end == utc(2026, 3, 1)


def test_create_windows_is_one_statement(store: TaskStore, url: str) -> None:
    counter = f"{store.table.name}_stmts"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (n int)").format(sql.Identifier(counter)))
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO {counter} VALUES (1); RETURN NULL; END $$"
            ).format(fn=sql.Identifier(f"{counter}_fn"), counter=sql.Identifier(counter))
        )
        conn.execute(
            sql.SQL("CREATE TRIGGER {} AFTER INSERT ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
                sql.Identifier(f"{counter}_trg"),
                sql.Identifier(store.table.name),
                sql.Identifier(f"{counter}_fn"),
            )
        )
        assert store.create_windows("five", "PT5M", D1, D1 + 7 * DAY) == 7 * 288
        statements = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(counter))
        ).fetchone()
        assert statements == (1,)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(counter)))
        conn.execute(sql.SQL("DROP FUNCTION {}() CASCADE").format(sql.Identifier(f"{counter}_fn")))


def test_create_windows_with_max_attempts(store: TaskStore) -> None:
    store.create_windows("a", "P1D", D1, D1 + 2 * DAY, max_attempts=3)
    store.create_windows("b", "P1D", D1, D1 + 2 * DAY)
    assert {t.max_attempts for t in store.query("a")} == {3}
    assert {t.max_attempts for t in store.query("b")} == {10}
    unlimited = TaskStore(store.database_url, store.table.name, max_attempts=None)
    try:
        unlimited.create_window("c", D1, "P1D")
        assert unlimited.get("c", D1).max_attempts is None  # type: ignore[union-attr]
    finally:
        unlimited.close()


# -- reading -----------------------------------------------------------------------------------


def test_records_match_the_row_field_for_field(store: TaskStore, url: str) -> None:
    # Whole rows are read positionally (Task.from_values): a column list out of step with the
    # record's fields would put values under the wrong names.
    store.create_window("call_mom", D1, "P1D", worker="seeder")
    store.claim("call_mom", worker="phone-0")[0].fail("no answer")
    store.acquire("call_mom", D1, worker="phone-0").complete("called back")
    store.reopen("call_mom", D1, D1 + DAY)
    (claim,) = store.claim("call_mom", worker="phone-1")
    done = claim.complete("called")  # generation 3, attempt 1, fail_count 1: every number differs
    raw = raw_row(url, store.table.name, "call_mom", D1)
    assert raw is not None
    for record in (done, store.get("call_mom", D1), store.query("call_mom")[0]):
        assert record is not None
        fields = record.as_dict()
        assert fields["bucket_interval"] == "P1D"
        for key, value in fields.items():
            expected = raw[key]
            if key == "bucket_interval":
                continue  # read back as ISO-8601 text, stored as an interval
            if hasattr(expected, "isoformat"):
                expected = expected.isoformat()
            assert value == expected, key
    assert (done.status, done.message, done.generation, done.attempt, done.fail_count) == (
        Status.COMPLETE,
        "called",
        3,
        1,
        1,
    )


def test_query_filters(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 6 * DAY)
    store.create_windows("water_plants", "PT12H", D1, D1 + 2 * DAY)
    first, _second = store.claim("call_mom", limit=2, worker="w1")
    first.complete()
    time.sleep(0.05)
    mark = store.now()
    time.sleep(0.05)
    [third] = store.claim("call_mom", worker="w2")
    third.skip("nothing to say")

    assert len(store.query()) == 10
    assert [t.name for t in store.query()] == ["call_mom"] * 6 + ["water_plants"] * 4
    assert len(store.query("water_plants")) == 4
    assert [t.bucket_time for t in store.query("call_mom", ["COMPLETE"])] == [D1]
    assert [t.bucket_time for t in store.query("call_mom", [Status.ACQUIRED, "skip"])] == [
        D1 + DAY,
        D1 + 2 * DAY,
    ]
    assert [
        t.bucket_time for t in store.query("call_mom", bucket_start=D1 + DAY, bucket_end=D1 + 3 * DAY)
    ] == [
        D1 + DAY,
        D1 + 2 * DAY,
    ]
    assert [t.bucket_time for t in store.query("call_mom", acquired_start=mark)] == [D1 + 2 * DAY]
    assert [t.bucket_time for t in store.query("call_mom", acquired_end=mark)] == [D1, D1 + DAY]
    assert len(store.query(limit=3)) == 3
    assert store.query("call_mom", [Status.AVAILABLE], bucket_end=D1 + 3 * DAY) == []
    assert store.query("nobody") == []
    with pytest.raises(ValueError, match="not one of AVAILABLE, ACQUIRED, COMPLETE, SKIP"):
        store.query("call_mom", ["DONE"])
    with pytest.raises(InvalidTimeError, match="no time zone"):
        store.query("call_mom", bucket_start=D1.replace(tzinfo=None))


# -- claiming ----------------------------------------------------------------------------------


def test_claim_oldest_first_with_token_and_lease(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 5 * DAY)
    before = store.now()
    claims = store.claim("call_mom", limit=2, worker="phone-1")
    assert [c.bucket_time for c in claims] == [D1, D1 + DAY]
    for c in claims:
        assert c.generation == 1 and c.attempt == 1 and c.worker == "phone-1"
        assert c.window_end == c.window_start + DAY
        task = store.get("call_mom", c.bucket_time)
        assert task is not None and task.status is Status.ACQUIRED
        assert task.acquired_by == "phone-1" and task.acquired_at is not None and task.acquired_at >= before
        assert task.lease_expires_at is not None
        assert timedelta(seconds=4) < task.lease_expires_at - task.acquired_at <= timedelta(seconds=5)
    # the held ones are not handed out again
    assert [c.bucket_time for c in store.claim("call_mom", limit=10)] == [
        D1 + 2 * DAY,
        D1 + 3 * DAY,
        D1 + 4 * DAY,
    ]
    assert store.claim("call_mom") == []
    assert store.claim("nobody") == []


def test_claim_newest_first(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 5 * DAY)
    claims = store.claim("call_mom", limit=2, newest_first=True)
    assert [c.bucket_time for c in claims] == [D1 + 4 * DAY, D1 + 3 * DAY]
    assert [c.bucket_time for c in store.claim("call_mom", limit=1)] == [D1]


def test_claim_only_its_own_name_and_per_claim_lease(store: TaskStore) -> None:
    store.create_windows("a", "P1D", D1, D1 + 2 * DAY)
    store.create_windows("b", "P1D", D1, D1 + 2 * DAY)
    [claim] = store.claim("b", lease_seconds=60)
    assert claim.name == "b" and claim.lease_seconds == 60
    task = store.get("b", D1)
    assert task is not None and task.lease_expires_at is not None and task.acquired_at is not None
    assert task.lease_expires_at - task.acquired_at == timedelta(seconds=60)
    assert all(t.status is Status.AVAILABLE for t in store.query("a"))


def test_claim_skips_rows_locked_by_another_transaction(store: TaskStore, url: str) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 3 * DAY)
    with psycopg.connect(url) as conn:
        conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE name = 'call_mom' AND bucket_time = %s FOR UPDATE").format(
                store.table.identifier
            ),
            (D1,),
        )
        started = time.monotonic()
        [claim] = store.claim("call_mom")
        assert time.monotonic() - started < 3  # SKIP LOCKED: no waiting for the lock
        assert claim.bucket_time == D1 + DAY
        conn.rollback()
    assert [c.bucket_time for c in store.claim("call_mom", limit=5)] == [D1, D1 + 2 * DAY]


def test_claim_rejects_bad_arguments(store: TaskStore) -> None:
    for limit in (0, -1, 1.5, "2", 10**9):
        with pytest.raises(InvalidInputError, match="limit must be an integer"):
            store.claim("call_mom", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="lease_seconds must be positive"):
        store.claim("call_mom", lease_seconds=0)


def test_backoff_is_honoured(store: TaskStore, url: str) -> None:
    slow = TaskStore(url, store.table.name, lease_seconds=5, backoff_base=1.0, backoff_max=1.5)
    try:
        slow.create_window("flaky", D1, "P1D")
        [claim] = slow.claim("flaky")
        before = slow.now()
        failed = claim.fail("timeout talking to the phone company")
        after = slow.now()
        assert failed.status is Status.AVAILABLE and failed.fail_count == 1
        assert failed.message == "timeout talking to the phone company"
        # attempt 1 failed: wait backoff_base * 2 ** 0 = 1 s from the moment of failure
        assert failed.not_before is not None
        assert before + timedelta(seconds=1) <= failed.not_before <= after + timedelta(seconds=1)
        assert slow.claim("flaky") == []
        assert "1 waiting out a retry backoff" in slow.explain_empty_claim("flaky")
        # the backoff is kept in the row: a store configured without backoff waits for it too
        assert store.claim("flaky") == []
        again, _ = wait_for(lambda: slow.claim("flaky"), timeout=5, what="claim after backoff")
        retried = slow.get("flaky", D1)
        assert retried is not None and retried.acquired_at is not None
        assert retried.acquired_at >= failed.not_before
        assert again[0].attempt == 2 and again[0].generation == 2
        # attempt 2 fails: 1 s * 2 ** 1 = 2 s, capped by backoff_max at 1.5 s
        before = slow.now()
        second = again[0].fail("still down")
        after = slow.now()
        assert second.not_before is not None
        assert before + timedelta(seconds=1.5) <= second.not_before <= after + timedelta(seconds=1.5)
    finally:
        slow.close()


def test_max_attempts_then_reopen(store: TaskStore) -> None:
    store.create_window("flaky", D1, "P1D", max_attempts=2)
    store.create_window("flaky", D1 + DAY, "P1D", max_attempts=2)
    for attempt in (1, 2):
        [claim] = store.claim("flaky")
        assert claim.bucket_time == D1 and claim.attempt == attempt
        claim.fail(f"attempt {attempt} failed")
    exhausted = store.get("flaky", D1)
    assert exhausted is not None and exhausted.exhausted and exhausted.fail_count == 2
    assert exhausted.status is Status.AVAILABLE
    # the exhausted window is passed over; the next one is claimed instead
    [claim] = store.claim("flaky", limit=5)
    assert claim.bucket_time == D1 + DAY
    claim.complete()
    assert store.claim("flaky") == []
    assert "1 over max attempts (reopen to retry)" in store.explain_empty_claim("flaky")
    assert store.reopen("flaky", D1, D1 + DAY, reason="phone line fixed") == 1
    reopened = store.get("flaky", D1)
    assert reopened is not None
    assert reopened.attempt == 0 and not reopened.exhausted and reopened.reopened_at is not None
    assert reopened.message == "phone line fixed" and reopened.fail_count == 2
    [claim] = store.claim("flaky")
    assert claim.bucket_time == D1 and claim.attempt == 1 and claim.generation == 3


# -- acquire by key ----------------------------------------------------------------------------


def test_acquire_available_and_missing(store: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    claim = store.acquire("call_mom", D1, worker="me")
    assert claim.generation == 1 and claim.attempt == 1
    task = store.get("call_mom", D1)
    assert task is not None and task.status is Status.ACQUIRED and task.acquired_by == "me"
    with pytest.raises(WindowNotFoundError, match="create it first"):
        store.acquire("call_mom", D1 + DAY)


def test_acquire_fails_at_once_on_a_row_locked_by_a_transaction(store: TaskStore, url: str) -> None:
    store.create_window("call_mom", D1, "P1D")
    with psycopg.connect(url) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET message = 'busy' WHERE name = 'call_mom'").format(store.table.identifier)
        )
        started = time.monotonic()
        with pytest.raises(WindowHeldError, match="being changed by another transaction"):
            store.acquire("call_mom", D1)
        assert time.monotonic() - started < 3  # NOWAIT: no waiting for the lock
        conn.rollback()
    # nothing changed, and once the transaction is gone it can be acquired
    task = store.get("call_mom", D1)
    assert task is not None and task.status is Status.AVAILABLE and task.generation == 0
    assert store.acquire("call_mom", D1).generation == 1


def test_acquire_a_held_window(store: TaskStore, other: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    [held] = store.claim("call_mom", worker="holder")
    with pytest.raises(WindowHeldError, match=r"held by holder \(claim 1, lease until"):
        other.acquire("call_mom", D1, worker="intruder")
    task = store.get("call_mom", D1)
    assert task is not None and task.acquired_by == "holder" and task.generation == 1
    held.complete()


def test_acquire_takes_over_an_expired_lease(store: TaskStore, other: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    [stale] = store.claim("call_mom", worker="sleepy", lease_seconds=0.2)
    time.sleep(0.4)
    taken = other.acquire("call_mom", D1, worker="rescuer")
    assert taken.generation == 2
    task = store.get("call_mom", D1)
    assert task is not None and task.fail_count == 1 and task.acquired_by == "rescuer"
    assert task.message == "lease of sleepy expired; taken over by rescuer"
    with pytest.raises(StaleClaimError):
        stale.complete()
    taken.complete()


def test_acquire_finished_windows_needs_rerun_finished(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 2 * DAY)
    first, second = store.claim("call_mom", limit=2)
    first.complete()
    second.skip()
    for bucket, status in ((D1, "COMPLETE"), (D1 + DAY, "SKIP")):
        with pytest.raises(WindowNotAvailableError, match=f"already {status}; pass rerun_finished=True"):
            store.acquire("call_mom", bucket)
        rerun = store.acquire("call_mom", bucket, worker="rerunner", rerun_finished=True)
        assert rerun.generation == 2 and rerun.attempt == 1
        task = store.get("call_mom", bucket)
        assert task is not None and task.status is Status.ACQUIRED and task.completed_at is None
        assert task.message == f"re-run of a {status} window requested by rerunner"
        assert rerun.complete().status is Status.COMPLETE


# -- transitions -------------------------------------------------------------------------------


def test_complete_fail_skip(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 3 * DAY)
    a, b, c = store.claim("call_mom", limit=3, worker="w")
    done = a.complete("talked 20 minutes")
    assert done.status is Status.COMPLETE and done.message == "talked 20 minutes"
    assert done.completed_at is not None and done.lease_expires_at is None and done.fail_count == 0
    assert a.finished and a.result == done
    skipped = b.skip("mom on holiday")
    assert skipped.status is Status.SKIP and skipped.completed_at is not None
    failed = c.fail("no answer")
    assert failed.status is Status.AVAILABLE and failed.fail_count == 1 and failed.message == "no answer"
    assert failed.completed_at is None and failed.lease_expires_at is None
    # each claim can be finished once
    for claim in (a, b, c):
        with pytest.raises(StaleClaimError, match="nothing was changed"):
            claim.complete()
    assert store.get("call_mom", D1) == done
    # the failed window is retried (zero backoff here) with a new token
    [retry] = store.claim("call_mom")
    assert retry.bucket_time == D1 + 2 * DAY and retry.generation == 2 and retry.attempt == 2


def test_claim_as_context_manager(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 3 * DAY)
    a, b, c = store.claim("call_mom", limit=3)
    with a:
        pass
    assert store.get("call_mom", D1).status is Status.COMPLETE  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="boom"), b:
        raise ValueError("boom")
    task = store.get("call_mom", D1 + DAY)
    assert task is not None and task.status is Status.AVAILABLE
    assert task.fail_count == 1 and task.message == "ValueError: boom"
    with c:
        c.skip("explicit")
    assert store.get("call_mom", D1 + 2 * DAY).status is Status.SKIP  # type: ignore[union-attr]


def test_messages_with_nul_are_kept(store: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    [claim] = store.claim("call_mom")
    assert claim.complete("a\x00b").message == "a\\0b"


def test_reopen_range_with_reason(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 5 * DAY)
    claims = store.claim("call_mom", limit=5)
    claims[0].complete()
    claims[1].skip()
    claims[2].complete()
    claims[3].complete()
    claims[4].fail("no answer")
    assert store.reopen("call_mom", D1, D1 + 3 * DAY, reason="late phone bill") == 3
    tasks = store.query("call_mom")
    assert [t.status for t in tasks] == [Status.AVAILABLE] * 3 + [Status.COMPLETE, Status.AVAILABLE]
    for t in tasks[:3]:
        assert t.message == "late phone bill" and t.reopened_at is not None and t.completed_at is not None
        assert t.attempt == 0
    assert tasks[4].message == "no answer" and tasks[4].reopened_at is None
    # without a reason the message says what it was
    assert store.reopen("call_mom", D1 + 3 * DAY, D1 + 4 * DAY) == 1
    assert store.get("call_mom", D1 + 3 * DAY).message == "reopened (was COMPLETE)"  # type: ignore[union-attr]
    assert [c.bucket_time for c in store.claim("call_mom", limit=10)] == days(5)
    with pytest.raises(InvalidInputError, match="must be after start"):
        store.reopen("call_mom", D1, D1)


def test_set_status(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 4 * DAY)
    assert store.set_status("call_mom", [D1, D1 + DAY], "skip", "public holiday") == 2
    assert [t.status for t in store.query("call_mom")] == [Status.SKIP] * 2 + [Status.AVAILABLE] * 2
    assert store.get("call_mom", D1).message == "public holiday"  # type: ignore[union-attr]
    [held] = store.claim("call_mom")
    # COMPLETE from outside fences the holder
    assert store.set_status("call_mom", [held.bucket_time], Status.COMPLETE) == 1
    task = store.get("call_mom", held.bucket_time)
    assert task is not None and task.status is Status.COMPLETE and task.generation == held.generation + 1
    with pytest.raises(StaleClaimError, match="it is now COMPLETE"):
        held.complete()
    assert store.set_status("call_mom", [], Status.SKIP) == 0
    with pytest.raises(ValueError, match="not one of"):
        store.set_status("call_mom", [D1], "FINISHED")


def test_skip_range(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 4 * DAY)
    a, b = store.claim("call_mom", limit=2)
    a.complete()
    assert store.skip("call_mom", D1, D1 + 3 * DAY, reason="away") == 2
    assert [t.status for t in store.query("call_mom")] == [
        Status.COMPLETE,
        Status.SKIP,
        Status.SKIP,
        Status.AVAILABLE,
    ]
    with pytest.raises(StaleClaimError):
        b.complete()
    assert store.skip("call_mom", D1, D1 + 3 * DAY) == 0


def test_resume_by_token(store: TaskStore, other: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    [claim] = store.claim("call_mom", worker="sensor")
    resumed = other.resume("call_mom", D1, claim.generation, "run-42")
    assert resumed.generation == claim.generation
    assert store.get("call_mom", D1).acquired_by == "run-42"  # type: ignore[union-attr]
    with pytest.raises(StaleClaimError):
        other.resume("call_mom", D1, claim.generation + 1, "impostor")
    with pytest.raises(WindowNotFoundError):
        other.resume("call_mom", D1 + DAY, 1, "nobody")
    assert resumed.complete().status is Status.COMPLETE


# -- find_or_create_and_acquire ----------------------------------------------------------------


def test_find_or_create_and_acquire_with_lag_and_backlog(store: TaskStore) -> None:
    now = utc(2026, 12, 10, 15, 30)
    claim = store.find_or_create_and_acquire("call_mom", "P1D", lag=1, backlog=2, now=now, worker="w")
    # current = the day before the one containing now; plus 2 days of backlog
    assert [t.bucket_time for t in store.query("call_mom")] == [
        utc(2026, 12, 7),
        utc(2026, 12, 8),
        utc(2026, 12, 9),
    ]
    assert claim is not None and claim.bucket_time == utc(2026, 12, 7) and claim.worker == "w"
    newest = store.find_or_create_and_acquire("call_mom", "P1D", lag=1, backlog=2, now=now, newest_first=True)
    assert newest is not None and newest.bucket_time == utc(2026, 12, 9)
    middle = store.find_or_create_and_acquire("call_mom", "P1D", lag=1, backlog=2, now=now)
    assert middle is not None and middle.bucket_time == utc(2026, 12, 8)
    assert store.find_or_create_and_acquire("call_mom", "P1D", lag=1, backlog=2, now=now) is None
    # next day: one new window appears and is claimed
    later = store.find_or_create_and_acquire("call_mom", "P1D", lag=1, backlog=2, now=now + DAY)
    assert later is not None and later.bucket_time == utc(2026, 12, 10)
    assert len(store.query("call_mom")) == 4
    with pytest.raises(InvalidInputError, match="lag and backlog must be >= 0"):
        store.find_or_create_and_acquire("call_mom", "P1D", lag=-1)


def test_find_or_create_and_acquire_defaults_to_the_database_clock(store: TaskStore) -> None:
    claim = store.find_or_create_and_acquire("tick", "PT1H", origin=None)
    assert claim is not None
    now = store.now()
    assert claim.bucket_time <= now < claim.window_end
    assert len(store.query("tick")) == 1


# -- stats and diagnosis -----------------------------------------------------------------------


def test_stats(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + 5 * DAY)
    store.create_windows("water_plants", "P1W", utc(2026, 12, 3), utc(2026, 12, 17))
    a, b, c, d = store.claim("call_mom", limit=4)
    a.complete()
    b.skip()
    c.fail("x")
    stats = {row["name"]: row for row in store.stats()}
    assert set(stats) == {"call_mom", "water_plants"}
    mom = stats["call_mom"]
    assert (mom["available"], mom["acquired"], mom["complete"], mom["skip"]) == (2, 1, 1, 1)
    assert mom["oldest_available"] == D1 + 2 * DAY and mom["max_fail_count"] == 1
    assert store.stats("water_plants") == [
        {
            "name": "water_plants",
            "available": 2,
            "acquired": 0,
            "complete": 0,
            "skip": 0,
            "oldest_available": utc(2026, 12, 3),
            "max_fail_count": 0,
        }
    ]
    assert store.stats("nobody") == []
    d.complete()


def test_explain_empty_claim(store: TaskStore, url: str) -> None:
    assert store.explain_empty_claim("call_mom") == "no windows of 'call_mom' exist yet"
    store.create_windows("call_mom", "P1D", D1, D1 + 2 * DAY)
    assert store.explain_empty_claim("call_mom") == "2 windows of 'call_mom' are claimable"
    a, b = store.claim("call_mom", limit=2)
    assert store.explain_empty_claim("call_mom") == "nothing claimable for 'call_mom': 2 held by workers"
    a.complete()
    b.skip()
    assert store.explain_empty_claim("call_mom") == "every window of 'call_mom' is COMPLETE or SKIP; none due"

    slow = TaskStore(url, store.table.name, backoff_base=60, backoff_max=60, max_attempts=1)
    try:
        slow.create_windows("flaky", "P1D", D1, D1 + 4 * DAY)
        slow.create_window("flaky2", D1, "P1D", max_attempts=5)
        [x] = slow.claim("flaky")
        x.fail("down")  # exhausted (1 of 1) and also inside its backoff
        [y] = slow.claim("flaky2")
        y.fail("down")  # backing off only
        # 3 untouched windows of flaky remain claimable; the failed one counts once, as exhausted
        assert slow.explain_empty_claim("flaky") == (
            "3 windows of 'flaky' are claimable (1 over max attempts (reopen to retry))"
        )
        assert (
            slow.explain_empty_claim("flaky2")
            == "nothing claimable for 'flaky2': 1 waiting out a retry backoff"
        )
        assert len(slow.claim("flaky", limit=10)) == 3
        assert slow.explain_empty_claim("flaky") == (
            "nothing claimable for 'flaky': 3 held by workers, 1 over max attempts (reopen to retry)"
        )
    finally:
        slow.close()
