#!/usr/bin/env python
"""Where does TaskStore lose against bare SQL? One process, one claim + complete at a time.

    python benchmarks/profile_store.py [--url URL] [--chunk 300] [--rounds 8] [--synchronous-commit off]

Runs the single-window claim + complete loop in several variants, interleaved in chunks (so that a
busy machine slows them all alike), and prints the median rate of each beside the bare-SQL loop:

- raw: the Java-shaped table and bare SQL of bench_store.py;
- store SQL: the statements TaskStore sends, executed with plain psycopg (what the richer SQL and
  table cost on the server), and the same without the guard trigger, without the lease index, and
  with a one-column RETURNING (what each of those costs);
- store API: TaskStore itself; with psycopg_pool's round-trip check on every checkout (the check
  this package used before); and reaping before every claim instead of once a second.

Then the client-side cost of single steps in microseconds. ``--synchronous-commit off`` (the default
here) takes the WAL flush out of every commit so that CPU costs are not hidden behind the disk.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_store as bench

UTC = timezone.utc
BASE = datetime(2020, 1, 1, tzinfo=UTC)


def _store(url: str, table: str, windows: int) -> Any:
    store = bench._store(url, table)
    store.create_windows(bench.NAME, "PT1M", BASE, BASE + timedelta(minutes=windows), worker="w")
    bench._vacuum(url, table)
    return store


def _store_sql(url: str, store: Any, chunk: int, returning: str | None = None) -> Callable[[], None]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET timezone = 'UTC'")
    conn.execute("SET intervalstyle = 'iso_8601'")
    claim = store._queries["claim"].as_string(conn)
    finish = store._queries["finish"].as_string(conn)
    if returning:
        claim = claim[: claim.index("RETURNING")] + "RETURNING t.name, t.bucket_time, t.generation"
        finish = finish[: finish.index("RETURNING")] + "RETURNING generation"
    cur = conn.cursor(row_factory=dict_row)
    args = {"name": bench.NAME, "limit": 1, "worker": "w", "lease": 30.0}

    def run() -> None:
        for _ in range(chunk):
            for row in cur.execute(claim, args).fetchall():
                params = {
                    "name": bench.NAME,
                    "bucket_time": row["bucket_time"],
                    "generation": row["generation"],
                    "status": "COMPLETE",
                    "message": None,
                }
                cur.execute(finish, params).fetchall()

    return run


def _api(store: Any, chunk: int, reap_every_claim: bool = False) -> Callable[[], None]:
    def run() -> None:
        for _ in range(chunk):
            if reap_every_claim:
                store._last_reap = 0.0
            for claim in store.claim(bench.NAME, 1, "w"):
                claim.complete()

    return run


def _raw(url: str, table: str, windows: int, chunk: int) -> Callable[[], None]:
    bench._raw_table(url, table)
    conn = psycopg.connect(url, autocommit=True)
    last = BASE + timedelta(minutes=windows - 1)
    conn.execute(bench.RAW_CREATE.format(t=table), (bench.NAME, "PT1M", "w", BASE, last, "PT1M"))
    bench._vacuum(url, table)
    claim, complete = bench.RAW_CLAIM.format(t=table), bench.RAW_COMPLETE.format(t=table)

    def run() -> None:
        for _ in range(chunk):
            for name, bucket_time, _interval in conn.execute(claim, (bench.NAME, 1, "w")).fetchall():
                conn.execute(complete, (name, bucket_time))

    return run


def micro(url: str, store: Any) -> dict[str, float]:
    """Client CPU of single steps of a store call, in microseconds."""
    from psycopg_pool import ConnectionPool

    from dagster_dtc.claim import Claim
    from dagster_dtc.database import check_connection
    from dagster_dtc.models import Task

    n = 5000
    out: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], object]) -> None:
        start = time.process_time()
        for _ in range(n):
            fn()
        out[label] = round((time.process_time() - start) / n * 1e6, 1)

    store.create_window("micro", BASE, "PT1M")
    pool = store._get_pool()
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(store._queries["get"], {"name": "micro", "bucket_time": BASE})
        row = cur.fetchone()
        assert row is not None
        task = Task.from_row(row)
        timed("cursor.description (18 columns; the old _rows test)", lambda: cur.description)
        timed(
            "Composed.as_bytes (the query text, now cached)", lambda: store._queries["claim"].as_bytes(conn)
        )
        timed(
            "round-trip check: conn.execute('') (old pool check)",
            lambda: ConnectionPool.check_connection(conn),
        )
        timed("socket-poll check (new pool check)", lambda: check_connection(conn))
        timed("Task.from_row", lambda: Task.from_row(row))
        timed("Claim(...) (creates a threading.Event)", lambda: Claim(store, task, "w", 30.0))
        timed("threading.Event()", threading.Event)

    def checkout() -> None:
        with pool.connection():
            pass

    timed("pool checkout + return, no query", checkout)
    timed("store.now(): one whole store call (SELECT now())", store.now)
    with psycopg.connect(url, autocommit=True) as conn:
        timed("bare psycopg SELECT now()", lambda: conn.execute("SELECT now()").fetchone())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="server to use (default: a throwaway embedded one)")
    parser.add_argument("--chunk", type=int, default=300, help="windows per variant per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="off")
    args = parser.parse_args(argv)

    from psycopg_pool import ConnectionPool

    server = None
    if args.url:
        url = args.url
    else:
        url, server = bench._start_server()
    try:
        # per session, through the URL: nothing on the server is changed
        url += f"{'&' if '?' in url else '?'}options=-csynchronous_commit%3D{args.synchronous_commit}"
        windows = args.chunk * args.rounds + 10
        plain = _store(url, "prof_store_sql", windows)
        no_trigger = _store(url, "prof_no_trigger", windows)
        no_lease = _store(url, "prof_no_lease", windows)
        short = _store(url, "prof_short_ret", windows)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER prof_no_trigger_guard ON prof_no_trigger")
            conn.execute("DROP INDEX prof_no_lease_lease_idx")
        api = _store(url, "prof_api", windows)
        api_old_check = _store(url, "prof_api_old_check", windows)
        api_old_check._get_pool()._check = ConnectionPool.check_connection
        api_reap = _store(url, "prof_api_reap", windows)
        variants: dict[str, Callable[[], None]] = {
            "raw SQL (Java-shaped table)": _raw(url, "prof_raw", windows, args.chunk),
            "store SQL via plain psycopg": _store_sql(url, plain, args.chunk),
            "  ... without the guard trigger": _store_sql(url, no_trigger, args.chunk),
            "  ... without the lease index": _store_sql(url, no_lease, args.chunk),
            "  ... RETURNING 3 columns, not 18": _store_sql(url, short, args.chunk, returning="short"),
            "TaskStore API": _api(api, args.chunk),
            "  ... with a round-trip pool check": _api(api_old_check, args.chunk),
            "  ... reaping before every claim": _api(api_reap, args.chunk, reap_every_claim=True),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for i in range(args.rounds):
            order = list(variants.items())
            for label, run in order if i % 2 == 0 else reversed(order):
                t, c = time.perf_counter(), time.process_time()
                run()
                rates[label].append(args.chunk / (time.perf_counter() - t))
                cpu[label].append((time.process_time() - c) / args.chunk * 1e6)
        base = statistics.median(rates["raw SQL (Java-shaped table)"])
        print(f"synchronous_commit={args.synchronous_commit}, {args.rounds} rounds of {args.chunk} windows")
        print(
            bench._table(
                ["variant", "windows/s (median)", "vs raw", "client cpu us/window"],
                [
                    [
                        label,
                        f"{statistics.median(rates[label]):,.0f}",
                        f"{statistics.median(rates[label]) / base:.2f}",
                        f"{statistics.median(cpu[label]):.0f}",
                    ]
                    for label in variants
                ],
            )
        )
        print()
        steps = micro(url, api)
        print(bench._table(["step", "client cpu us"], [[k, v] for k, v in steps.items()]))
    finally:
        if server is not None:
            server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
