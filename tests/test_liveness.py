"""Leases: a killed worker loses its window within the bound, a live one keeps it without an open
transaction, and a holder whose lease ran out is fenced off by its token."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from dagster_dtc import StaleClaimError, Status, TaskStore

from .core_support import hold_forever_worker, kill, raw_row, utc, wait_for

D1 = utc(2026, 12, 1)


@pytest.fixture
def rescuer(store: TaskStore, database_url: str) -> Iterator[TaskStore]:
    s = TaskStore(database_url, store.table.name, lease_seconds=2, backoff_base=0.0, backoff_max=0.0)
    try:
        yield s
    finally:
        s.close()


def test_killed_worker_loses_its_window_within_lease_plus_a_second(
    store: TaskStore, rescuer: TaskStore, database_url: str
) -> None:
    lease = 2.0
    store.create_window("call_mom", D1, "P1D")
    ready = Path(tempfile.mkdtemp(prefix="dtc-ready-")) / "ready"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=hold_forever_worker, args=(database_url, store.table.name, "call_mom", lease, str(ready))
    )
    proc.start()
    try:
        wait_for(ready.exists, timeout=60, what="worker claimed its window")
        bucket_text, generation = ready.read_text().split()
        assert bucket_text == D1.isoformat() and generation == "1"
        # let a heartbeat or two happen, so the lease is the renewed one
        time.sleep(lease * 0.6)
        held = store.get("call_mom", D1)
        assert (
            held is not None and held.status is Status.ACQUIRED and held.acquired_by == f"doomed-{proc.pid}"
        )
        assert rescuer.claim("call_mom") == []
        assert proc.pid is not None
        kill(proc.pid)
        killed_at = time.monotonic()
        proc.join(timeout=10)
        assert proc.exitcode == -9
        claims, _ = wait_for(
            lambda: rescuer.claim("call_mom", worker="rescuer"), timeout=lease + 5, every=0.05
        )
        elapsed = time.monotonic() - killed_at
    finally:
        if proc.is_alive():
            proc.kill()
        ready.unlink(missing_ok=True)
        ready.parent.rmdir()
    assert elapsed <= lease + 1.5, f"window came back after {elapsed:.2f} s; bound is lease + ~1 s"
    [claim] = claims
    assert claim.generation == 2 and claim.attempt == 2
    task = store.get("call_mom", D1)
    assert task is not None and task.fail_count == 1 and task.acquired_by == "rescuer"
    assert task.message is not None
    assert task.message.startswith(f"lease expired: doomed-{proc.pid} stopped renewing claim 1 at ")
    claim.complete()


def test_reap_frees_expired_windows_only(store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, utc(2026, 12, 4))
    [short] = store.claim("call_mom", worker="short", lease_seconds=0.3)
    [long] = store.claim("call_mom", worker="long", lease_seconds=30)
    assert store.reap() == 0
    time.sleep(0.5)
    assert store.reap("other_name") == 0
    assert store.reap("call_mom") == 1
    assert store.reap() == 0
    expired = store.get("call_mom", D1)
    assert expired is not None and expired.status is Status.AVAILABLE and expired.fail_count == 1
    assert expired.lease_expires_at is None and expired.generation == short.generation
    assert store.get("call_mom", long.bucket_time).status is Status.ACQUIRED  # type: ignore[union-attr]


def test_claim_reaps_at_most_once_a_second(store: TaskStore) -> None:
    store.create_window("call_mom", D1, "P1D")
    [dying] = store.claim("call_mom", worker="dying", lease_seconds=0.2)  # this claim also reaped
    reaped_at = store._last_reap
    time.sleep(0.4)
    # expired, but this process reaped less than a second ago: the claim does not reap again
    gap = time.monotonic() - reaped_at
    got = store.claim("call_mom")
    if gap < 0.95:  # (a badly overloaded machine may have let the second pass already)
        assert got == []
        assert store.get("call_mom", D1).status is Status.ACQUIRED  # type: ignore[union-attr]
        claims, _ = wait_for(lambda: store.claim("call_mom", worker="next"), timeout=3)
        assert store._last_reap - reaped_at >= 1.0
        got = claims
    assert got[0].generation == dying.generation + 1


def _sample_transactions(url: str, samples: list[dict]) -> None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT pid, state, xact_start, now() - xact_start AS xact_age FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'dagster-dtc' "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
        samples.extend(rows)


def test_live_worker_keeps_its_window_without_holding_a_transaction(
    store: TaskStore, rescuer: TaskStore, database_url: str
) -> None:
    lease = 1.0
    worker = TaskStore(database_url, store.table.name, lease_seconds=lease, backoff_base=0.0, backoff_max=0.0)
    try:
        worker.create_window("call_mom", D1, "P1D")
        [claim] = worker.claim("call_mom", worker="busy")
        first = raw_row(database_url, store.table.name, "call_mom", D1)
        assert first is not None
        samples: list[dict] = []
        stolen = []
        with claim:
            deadline = time.monotonic() + 4.5 * lease
            while time.monotonic() < deadline:  # "busy" for several lease periods
                stolen.extend(rescuer.claim("call_mom", worker="thief"))
                _sample_transactions(database_url, samples)
                time.sleep(0.1)
            during = raw_row(database_url, store.table.name, "call_mom", D1)
        assert stolen == []
        assert not claim.lost
        assert during is not None
        assert during["status"] == "ACQUIRED" and during["generation"] == first["generation"]
        assert during["acquired_by"] == "busy" and during["fail_count"] == 0
        assert during["lease_expires_at"] > first["lease_expires_at"]
        # heartbeats every lease/3: at least a handful happened
        assert during["revision"] - first["revision"] >= 5
        done = store.get("call_mom", D1)
        assert done is not None and done.status is Status.COMPLETE and done.generation == first["generation"]
    finally:
        worker.close()
    assert samples, "no connections were seen"
    idle_in_transaction = [s for s in samples if s["state"] and s["state"].startswith("idle in transaction")]
    assert idle_in_transaction == []
    long_transactions = [
        s for s in samples if s["xact_age"] is not None and s["xact_age"].total_seconds() > 0.5
    ]
    assert long_transactions == []


def test_stale_token_after_expiry_and_reclaim_changes_nothing(
    store: TaskStore, rescuer: TaskStore, database_url: str
) -> None:
    store.create_window("call_mom", D1, "P1D")
    [a] = store.claim("call_mom", worker="A", lease_seconds=0.5)
    time.sleep(0.7)
    [b] = rescuer.claim("call_mom", worker="B")
    assert b.generation == a.generation + 1
    before = raw_row(database_url, store.table.name, "call_mom", D1)
    for action in (a.complete, a.skip, a.fail, a.heartbeat):
        with pytest.raises(
            StaleClaimError, match=r"with claim 1: it is now ACQUIRED at generation 2 \(acquired_by B\)"
        ) as info:
            action()
        assert info.value.current is not None and info.value.current.acquired_by == "B"
        assert raw_row(database_url, store.table.name, "call_mom", D1) == before
    # A's keep-alive notices and stops; leaving the block cannot complete the window; B is unaffected
    with pytest.raises(StaleClaimError), a:
        wait_for(lambda: a.lost, timeout=3, what="keep-alive noticing the lost claim")
    assert raw_row(database_url, store.table.name, "call_mom", D1) == before
    assert b.complete().status is Status.COMPLETE
