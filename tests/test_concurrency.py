"""Many processes claiming one table at once: every window is completed exactly once."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta

import psycopg
from psycopg import sql

from dagster_dtc import Status, TaskStore, WindowHeldError

from .core_support import claim_and_complete_worker, report_to, utc

PROCESSES = 8
WINDOWS = 2000


def test_eight_processes_complete_each_window_exactly_once(store: TaskStore, database_url: str) -> None:
    name = "five_minutely"
    start = utc(2026, 1, 1)
    assert store.create_windows(name, "PT5M", start, start + WINDOWS * timedelta(minutes=5)) == WINDOWS
    log_table = f"{store.table.name}_log"
    with psycopg.connect(database_url, autocommit=True) as conn:
        # no unique key on purpose: a duplicate completion must be visible, not rejected
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (name text, bucket_time timestamptz, generation bigint, worker text, "
                "status text, at timestamptz DEFAULT clock_timestamp())"
            ).format(sql.Identifier(log_table))
        )
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=report_to,
            args=(
                results,
                claim_and_complete_worker,
                database_url,
                store.table.name,
                name,
                log_table,
                f"proc-{i}",
                barrier,
                1 + i % 5,
            ),
        )
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [text for kind, text in outcomes if kind == "error"]
    assert errors == []
    counts = [value for _, value in outcomes]
    assert sum(counts) == WINDOWS
    assert sum(1 for c in counts if c > 0) >= 2, f"work was not shared: {counts}"

    with psycopg.connect(database_url, autocommit=True) as conn:
        log = sql.Identifier(log_table)
        dupes = conn.execute(
            sql.SQL("SELECT bucket_time, count(*) FROM {} GROUP BY bucket_time HAVING count(*) > 1").format(
                log
            )
        ).fetchall()
        assert dupes == []
        total, distinct, statuses = conn.execute(
            sql.SQL(
                "SELECT count(*), count(DISTINCT bucket_time), array_agg(DISTINCT status) FROM {}"
            ).format(log)
        ).fetchone()  # type: ignore[misc]
        assert (total, distinct, statuses) == (WINDOWS, WINDOWS, ["COMPLETE"])
        # each logged completion is the token the row ended with, by the worker the row names
        mismatched = conn.execute(
            sql.SQL(
                "SELECT l.bucket_time FROM {log} l JOIN {t} t "
                "ON t.name = l.name AND t.bucket_time = l.bucket_time "
                "WHERE t.generation <> l.generation OR t.acquired_by <> l.worker"
            ).format(log=log, t=store.table.identifier)
        ).fetchall()
        assert mismatched == []
        conn.execute(sql.SQL("DROP TABLE {}").format(log))

    tasks = store.query(name)
    assert len(tasks) == WINDOWS
    assert {t.status for t in tasks} == {Status.COMPLETE}
    assert {t.generation for t in tasks} == {1}
    assert {t.fail_count for t in tasks} == {0}
    assert store.claim(name) == []


def _race(store: TaskStore, i: int, go: threading.Barrier, winners: list[str], lock: threading.Lock) -> None:
    go.wait()
    if i % 2:
        won = bool(store.claim("solo", worker=f"c{i}"))
    else:
        try:
            store.acquire("solo", utc(2026, 1, 1), worker=f"a{i}")
            won = True
        except WindowHeldError:
            won = False
    if won:
        with lock:
            winners.append(str(i))


def test_threads_racing_for_one_window(store: TaskStore, database_url: str) -> None:
    """claim() and acquire() racing for one window from separate connections: one wins each round."""
    store.create_window("solo", utc(2026, 1, 1), "P1D")
    stores = [
        TaskStore(
            database_url, store.table.name, lease_seconds=5, backoff_base=0.0, backoff_max=0.0, pool_size=1
        )
        for _ in range(6)
    ]
    try:
        for _ in range(15):
            winners: list[str] = []
            lock = threading.Lock()
            go = threading.Barrier(6)
            threads = [
                threading.Thread(target=_race, args=(stores[i], i, go, winners, lock)) for i in range(6)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert len(winners) == 1, winners
            task = store.get("solo", utc(2026, 1, 1))
            assert task is not None and task.status is Status.ACQUIRED
            store.set_status("solo", [utc(2026, 1, 1)], Status.COMPLETE)
            assert store.reopen("solo", utc(2026, 1, 1), utc(2026, 1, 2)) == 1
    finally:
        for s in stores:
            s.close()
    task = store.get("solo", utc(2026, 1, 1))
    # every round: one claim (+1) and the COMPLETE that fenced it (+1)
    assert task is not None and task.status is Status.AVAILABLE and task.generation == 30


def _create(
    s: TaskStore, i: int, name: str, go: threading.Barrier, counts: list[int], errors: list[BaseException]
) -> None:
    start, five = utc(2026, 1, 1), timedelta(minutes=5)
    try:
        go.wait()
        # ranges [i*100, i*100 + 400) in 5-minute steps: each overlaps its neighbours
        counts.append(s.create_windows(name, "PT5M", start + i * 100 * five, start + (i * 100 + 400) * five))
    except BaseException as exc:
        errors.append(exc)


def test_concurrent_create_windows_on_overlapping_ranges(store: TaskStore, database_url: str) -> None:
    """Creators racing over overlapping ranges: no errors, every window once, counts add up."""
    stores = [TaskStore(database_url, store.table.name, pool_size=1) for _ in range(6)]
    try:
        for round_ in range(5):
            name = f"overlap_{round_}"
            go = threading.Barrier(len(stores))
            counts: list[int] = []
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_create, args=(s, i, name, go, counts, errors))
                for i, s in enumerate(stores)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert errors == []
            total = len(stores) * 100 + 300
            assert sum(counts) == total
            tasks = store.query(name)
            assert len(tasks) == total
            assert len({t.bucket_time for t in tasks}) == total
    finally:
        for s in stores:
            s.close()
