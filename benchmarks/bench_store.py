#!/usr/bin/env python
"""Benchmark TaskStore against the same work written as bare SQL, on one throwaway PostgreSQL server.

    python benchmarks/bench_store.py            # full run (a few minutes)
    python benchmarks/bench_store.py --quick    # smaller tables, about a minute

Measures, each store figure beside its plain-psycopg equivalent on a Java-shaped table (primary key
plus a partial index on AVAILABLE):

(a) claim + complete throughput with 1, 4 and 8 worker processes (spawn), one window per claim and
    ten per claim; every scenario has its own table and ends with a count proving each window was
    completed exactly once;
(b) creating one year of PT1M windows (525,600 rows) with ``create_windows``;
(c) ``claim(limit=1000)`` from tables of 10,000 and 1,000,000 windows that are mostly COMPLETE.

Figures are printed as tables and written as JSON to ``benchmarks/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
UTC = timezone.utc
BASE = datetime(2020, 1, 1, tzinfo=UTC)
NAME = "bench"
YEAR_START, YEAR_END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)

# The table the Java DTC library creates (migration 0001), plus the partial index a Java shop would add.
RAW_DDL = """
CREATE TABLE {t} (
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
);
CREATE INDEX {t}_available ON {t} (name, bucket_time) WHERE status = 'AVAILABLE'
"""
RAW_CLAIM = """
WITH c AS (
    SELECT name, bucket_time FROM {t}
    WHERE name = %s AND status = 'AVAILABLE'
    ORDER BY bucket_time LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE {t} AS t SET status = 'ACQUIRED', acquired_by = %s, acquired_at = now()
FROM c WHERE t.name = c.name AND t.bucket_time = c.bucket_time
RETURNING t.name, t.bucket_time, t.bucket_interval
"""
RAW_COMPLETE = "UPDATE {t} SET status = 'COMPLETE', completed_at = now() WHERE name = %s AND bucket_time = %s"
RAW_CREATE = """
INSERT INTO {t} (name, bucket_time, bucket_interval, status, created_by, created_at)
SELECT %s, g, %s::interval, 'AVAILABLE', %s, now()
FROM generate_series(%s::timestamptz, %s::timestamptz, %s::interval) AS g
"""


# -- helpers ---------------------------------------------------------------------------------------


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _busy_since(start: tuple[int, int]) -> float | None:
    busy, total = _cpu_busy()
    return None if total == start[1] else (busy - start[0]) / (total - start[1])


def _background_busy(seconds: float = 1.0, quiet: float = 0.3, patience: float = 30.0) -> float | None:
    """Share of the machine's CPU busy over ``seconds`` while this benchmark idles: other people's work.

    Samples again (for up to ``patience`` seconds) while that share is above ``quiet``, so that a
    scenario starts on a quiet machine when there is one; returns the last sample.
    """
    deadline = time.monotonic() + patience
    while True:
        start = _cpu_busy()
        time.sleep(seconds)
        busy = _busy_since(start)
        if busy is None or busy <= quiet or time.monotonic() > deadline:
            return busy


def machine(url: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import psycopg_pool

    import dagster_dtc

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    with _connect(url) as conn:
        settings = {
            key: conn.execute(f"SHOW {key}").fetchone()[0]  # type: ignore[index]
            for key in ("server_version", "synchronous_commit", "shared_buffers", "max_connections")
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "postgresql": settings.pop("server_version"),
        "pg_settings": settings,
        "python": platform.python_version(),
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "psycopg_pool": psycopg_pool.__version__,
        "platform": platform.platform(),
        "dagster_dtc": str(Path(dagster_dtc.__file__).parent),
        "git": commit,
        "loadavg_at_start": list(os.getloadavg()),
    }


def _store(url: str, table: str, **kwargs: Any) -> Any:
    from dagster_dtc import TaskStore

    store = TaskStore(url, table, **kwargs)
    store.init_schema()
    return store


def _drop(url: str, *tables: str) -> None:
    with _connect(url) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        # migration bookkeeping and the guard function are per table
        if conn.execute("SELECT to_regclass('dtc_schema_migrations') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            conn.execute("DELETE FROM dtc_schema_migrations WHERE table_name = ANY(%s)", (list(tables),))
        for table in tables:
            conn.execute(f"DROP FUNCTION IF EXISTS {table}_guard()")


def _raw_table(url: str, table: str) -> None:
    with _connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(RAW_DDL.format(t=table))


def _vacuum(url: str, *tables: str) -> None:
    with _connect(url) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")


# -- (a) worker processes --------------------------------------------------------------------------


def _worker_main(idx: int, inbox: Any, outbox: Any) -> None:
    """A long-lived spawn worker: runs one scenario per task, after a ready/go handshake."""
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            outbox.put(_run_task(idx, task, inbox, outbox))
        except BaseException as exc:
            outbox.put({"idx": idx, "error": f"{type(exc).__name__}: {exc}"})


def _run_task(idx: int, task: dict[str, Any], inbox: Any, outbox: Any) -> dict[str, Any]:
    if task["kind"] == "warmup":
        import dagster_dtc  # noqa: F401  (imports dagster: seconds of CPU, paid before any clock starts)

        return {"idx": idx, "warm": True}
    kind, url, table, batch = task["kind"], task["url"], task["table"], task["batch"]
    worker = f"bench-{idx}"
    done = claims = 0
    if kind == "store":
        from dagster_dtc import TaskStore

        store = TaskStore(url, table)
        store.now()  # open the pool before the clock starts
        outbox.put({"ready": idx})
        deadline = inbox.get()["deadline"]
        t0, c0 = time.monotonic(), time.process_time()
        while time.monotonic() < deadline:
            got = store.claim(NAME, batch, worker)
            if not got:
                break
            claims += 1
            for claim in got:
                claim.complete()
                done += 1
        t1, c1 = time.monotonic(), time.process_time()
        store.close()
    else:
        claim_sql, complete_sql = RAW_CLAIM.format(t=table), RAW_COMPLETE.format(t=table)
        with _connect(url) as conn:
            conn.execute("SELECT 1")
            outbox.put({"ready": idx})
            deadline = inbox.get()["deadline"]
            t0, c0 = time.monotonic(), time.process_time()
            while time.monotonic() < deadline:
                rows = conn.execute(claim_sql, (NAME, batch, worker)).fetchall()
                if not rows:
                    break
                claims += 1
                for name, bucket_time, _interval in rows:
                    cur = conn.execute(complete_sql, (name, bucket_time))
                    if cur.rowcount != 1:
                        raise RuntimeError(f"raw complete of {bucket_time} changed {cur.rowcount} rows")
                    done += 1
            t1, c1 = time.monotonic(), time.process_time()
    return {"idx": idx, "done": done, "claims": claims, "t0": t0, "t1": t1, "cpu": c1 - c0}


class Workers:
    """``n`` spawn processes started once and reused by every scenario (imports are paid once)."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(n)]
        self.procs = [
            ctx.Process(target=_worker_main, args=(i, self.inboxes[i], self.outbox), daemon=True)
            for i in range(n)
        ]
        for p in self.procs:
            p.start()
        for inbox in self.inboxes:
            inbox.put({"kind": "warmup"})
        for _ in range(n):
            self._get()

    def _get(self, timeout: float = 900) -> dict[str, Any]:
        msg = self.outbox.get(timeout=timeout)
        if "error" in msg:
            raise RuntimeError(f"worker {msg['idx']} failed: {msg['error']}")
        return msg

    def run(
        self, n: int, task: dict[str, Any], limit_s: float
    ) -> tuple[float, list[dict[str, Any]], float | None]:
        """Run ``task`` on ``n`` workers at once; they stop claiming after ``limit_s`` seconds."""
        for inbox in self.inboxes[:n]:
            inbox.put(task)
        for _ in range(n):
            self._get()  # ready
        cpu0 = _cpu_busy()
        t0 = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on Linux
        for inbox in self.inboxes[:n]:
            inbox.put({"deadline": t0 + limit_s})
        results = [self._get() for _ in range(n)]
        elapsed = max(r["t1"] for r in results) - t0
        return elapsed, results, _busy_since(cpu0)

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def _verify(url: str, table: str, kind: str, windows: int, done: int) -> dict[str, Any]:
    """Every window the workers completed is COMPLETE, once; every other one is untouched AVAILABLE."""
    extra = (
        ", count(*) FILTER (WHERE generation <> CASE WHEN status = 'COMPLETE' THEN 1 ELSE 0 END)"
        if kind == "store"
        else ", 0"
    )
    with _connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'COMPLETE'),"
            " count(*) FILTER (WHERE status = 'AVAILABLE'),"
            f" count(*) FILTER (WHERE status NOT IN ('COMPLETE', 'AVAILABLE')){extra} FROM {table}"
        ).fetchone()
    assert row is not None
    complete, available, other, wrong_generation = row
    ok = complete == done and available == windows - done and other == 0 and wrong_generation == 0
    return {
        "ok": ok,
        "complete": complete,
        "available": available,
        "other": other,
        "claimed_twice": wrong_generation,
        "done_by_workers": done,
        "drained": done == windows,
    }


def _make_table(url: str, kind: str, table: str, windows: int) -> None:
    end = BASE + timedelta(minutes=windows)
    if kind == "store":
        _drop(url, table)
        store = _store(url, table)
        store.create_windows(NAME, "PT1M", BASE, end, worker="bench")
        store.close()
    else:
        _raw_table(url, table)
        with _connect(url) as conn:
            last = end - timedelta(minutes=1)
            conn.execute(RAW_CREATE.format(t=table), (NAME, "PT1M", "bench", BASE, last, "PT1M"))
    _vacuum(url, table)


def bench_throughput(
    url: str, workers: Workers, procs: list[int], windows: int, limit_s: float
) -> list[dict[str, Any]]:
    """Store and raw run in alternating slices (store, raw, raw, store), each on its own table that
    the next slice of the same kind continues, so that a machine slowing down or speeding up
    during the scenario weighs on both alike."""
    rows = []
    for batch in (1, 10):
        for n in procs:
            row: dict[str, Any] = {"procs": n, "batch": batch, "windows": windows}
            tables = {kind: f"bench_{kind}_p{n}_b{batch}" for kind in ("store", "raw")}
            acc: dict[str, dict[str, Any]] = {}
            for kind, table in tables.items():
                _make_table(url, kind, table, windows)
                acc[kind] = {"seconds": 0.0, "done": 0, "cpu": 0.0, "claims": 0, "busy": [], "background": []}
                acc[kind]["per_worker"] = [0] * n
            for kind in ("store", "raw", "raw", "store"):
                a = acc[kind]
                if a["done"] >= windows:
                    continue
                a["background"].append(_background_busy())
                task = {"kind": kind, "url": url, "table": tables[kind], "batch": batch}
                elapsed, results, busy = workers.run(n, task, limit_s / 2)
                a["seconds"] += elapsed
                a["done"] += sum(r["done"] for r in results)
                a["cpu"] += sum(r["cpu"] for r in results)
                a["claims"] += sum(r["claims"] for r in results)
                a["busy"].append(busy)
                for r in results:
                    a["per_worker"][r["idx"]] += r["done"]
            for kind, table in tables.items():
                a = acc[kind]
                verify = _verify(url, table, kind, windows, a["done"])
                _drop(url, table)
                background = [b for b in a["background"] if b is not None]
                busy = [b for b in a["busy"] if b is not None]
                row[kind] = {
                    "seconds": round(a["seconds"], 3),
                    "windows_done": a["done"],
                    "windows_per_s": round(a["done"] / a["seconds"], 1),
                    "client_cpu_us_per_window": round(1e6 * a["cpu"] / max(a["done"], 1), 1),
                    "claims": a["claims"],
                    "per_worker": a["per_worker"],
                    "machine_cpu_busy": round(statistics.mean(busy), 3) if busy else None,
                    "background_cpu_busy_before": round(max(background), 3) if background else None,
                    "verify": verify,
                }
                _progress(
                    f"  {kind:5s} procs={n} batch={batch:2d}: {a['done'] / a['seconds']:8.0f} windows/s "
                    f"({a['done']:,} windows in {a['seconds']:.1f} s; "
                    f"up to {100 * (max(background) if background else 0):.0f}% busy just before)"
                    f"{'' if verify['ok'] else '  VERIFY FAILED ' + repr(verify)}"
                )
            row["ratio"] = round(row["store"]["windows_per_s"] / row["raw"]["windows_per_s"], 3)
            rows.append(row)
    return rows


# -- (b) creating a year of windows ----------------------------------------------------------------


def bench_create(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    store = _store(url, "bench_create")
    store.now()
    out["background_cpu_busy_before"] = _background_busy()
    t = time.perf_counter()
    created = store.create_windows(NAME, "PT1M", YEAR_START, YEAR_END, worker="bench")
    out["store_seconds"] = round(time.perf_counter() - t, 3)
    out["rows"] = created
    t = time.perf_counter()
    again = store.create_windows(NAME, "PT1M", YEAR_START, YEAR_END, worker="bench")
    out["store_rerun_seconds"] = round(time.perf_counter() - t, 3)
    out["rerun_new_rows"] = again
    store.close()
    _drop(url, "bench_create")

    _raw_table(url, "bench_create_raw")
    with _connect(url) as conn:
        out["raw_background_cpu_busy_before"] = _background_busy()
        t = time.perf_counter()
        cur = conn.execute(
            RAW_CREATE.format(t="bench_create_raw"),
            (NAME, "PT1M", "bench", YEAR_START, YEAR_END - timedelta(minutes=1), "PT1M"),
        )
        out["raw_seconds"] = round(time.perf_counter() - t, 3)
        out["raw_rows"] = cur.rowcount
    _drop(url, "bench_create_raw")
    out["ok"] = created == 525_600 and again == 0 and out["raw_rows"] == 525_600
    return out


# -- (c) claiming 1000 windows out of a big, mostly COMPLETE table ---------------------------------


def _fill(url: str, table: str, kind: str, size: int, available: int, layout: str) -> None:
    """``size`` PT1M windows, ``available`` AVAILABLE (the newest, or spread evenly), the rest COMPLETE."""
    step = size // available
    is_available = f"i >= {size - available}" if layout == "newest" else f"i %% {step} = {step - 1}"
    when = "%s::timestamptz + i * interval '1 minute'"
    if kind == "store":
        _drop(url, table)
        _store(url, table)
        insert = (
            f"INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, "
            "acquired_by, acquired_at, completed_at, generation, attempt, revision, max_attempts) "
            f"SELECT %s, {when}, 'PT1M', s, 'bench', now(), w, a, a, g, g, 2 * g, 10 FROM ("
            f"SELECT i, CASE WHEN {is_available} THEN 'AVAILABLE' ELSE 'COMPLETE' END AS s,"
            f" CASE WHEN {is_available} THEN NULL ELSE 'bench' END AS w,"
            f" CASE WHEN {is_available} THEN NULL ELSE now() END AS a,"
            f" CASE WHEN {is_available} THEN 0 ELSE 1 END AS g FROM generate_series(0, %s) AS i) AS x"
        )
    else:
        _raw_table(url, table)
        insert = (
            f"INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, "
            "acquired_by, acquired_at, completed_at) "
            f"SELECT %s, {when}, 'PT1M', s, 'bench', now(), w, a, a FROM ("
            f"SELECT i, CASE WHEN {is_available} THEN 'AVAILABLE' ELSE 'COMPLETE' END AS s,"
            f" CASE WHEN {is_available} THEN NULL ELSE 'bench' END AS w,"
            f" CASE WHEN {is_available} THEN NULL ELSE now() END AS a FROM generate_series(0, %s) AS i) AS x"
        )
    with _connect(url) as conn:
        conn.execute(insert, (NAME, BASE, size - 1))
    _vacuum(url, table)


def bench_claim_batch(url: str, sizes: list[int], reps: int) -> list[dict[str, Any]]:
    out = []
    for size in sizes:
        available = max(2_000, size // 100)
        for layout in ("newest", "spread"):
            row: dict[str, Any] = {"windows": size, "available": available, "layout": layout}
            for kind in ("store", "raw"):
                table = f"bench_batch_{kind}"
                _fill(url, table, kind, size, available, layout)
                times = []
                if kind == "store":
                    store = _store(url, table)
                    store.now()
                    for _ in range(reps):
                        t = time.perf_counter()
                        got = store.claim(NAME, 1000, "bench")
                        times.append(time.perf_counter() - t)
                        assert len(got) == 1000, len(got)
                        _release(url, table, store=True)
                    store.close()
                else:
                    with _connect(url) as conn:
                        claim_sql = RAW_CLAIM.format(t=table)
                        for _ in range(reps):
                            t = time.perf_counter()
                            got = conn.execute(claim_sql, (NAME, 1000, "bench")).fetchall()
                            times.append(time.perf_counter() - t)
                            assert len(got) == 1000, len(got)
                            _release(url, table, store=False)
                _drop(url, table)
                row[kind] = {
                    "median_s": round(statistics.median(times), 4),
                    "min_s": round(min(times), 4),
                    "max_s": round(max(times), 4),
                    "first_s": round(times[0], 4),
                }
            out.append(row)
            _progress(
                f"  claim(limit=1000) of {size:>9,} windows, {layout:6s}: store "
                f"{row['store']['median_s']:.4f} s, raw {row['raw']['median_s']:.4f} s (median of {reps})"
            )
    return out


def _release(url: str, table: str, *, store: bool) -> None:
    """Put the windows just claimed back, as if the claim had never happened (bypasses the guard)."""
    extra = ", revision = revision + 1, lease_expires_at = NULL, attempt = attempt - 1" if store else ""
    with _connect(url) as conn:
        conn.execute(
            f"UPDATE {table} SET status = 'AVAILABLE', acquired_by = NULL, acquired_at = NULL{extra} "
            "WHERE status = 'ACQUIRED'"
        )


# -- report ----------------------------------------------------------------------------------------


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, sep, *body])


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    parts = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; PostgreSQL {m['postgresql']} "
        f"(synchronous_commit={m['pg_settings']['synchronous_commit']}); Python {m['python']}; "
        f"psycopg {m['psycopg']}, psycopg_pool {m['psycopg_pool']}",
        f"load average at start {m['loadavg_at_start']}, at end {result.get('loadavg_at_end')}; "
        f"mode {result['mode']}; total {result.get('total_seconds')} s; "
        f"dagster_dtc from {m.get('dagster_dtc')} (git {m.get('git') or '?'})",
    ]
    if "throughput" in result:
        rows = []
        for r in result["throughput"]:
            s, w = r["store"], r["raw"]
            ok = "yes" if s["verify"]["ok"] and w["verify"]["ok"] else "NO"
            rows.append(
                [
                    r["procs"],
                    r["batch"],
                    f"{s['windows_done']:,}/{w['windows_done']:,}",
                    f"{s['windows_per_s']:,.0f}",
                    f"{w['windows_per_s']:,.0f}",
                    f"{r['ratio']:.2f}",
                    f"{s['client_cpu_us_per_window']:.0f}",
                    f"{w['client_cpu_us_per_window']:.0f}",
                    f"{100 * (s['background_cpu_busy_before'] or 0):.0f}/"
                    f"{100 * (w['background_cpu_busy_before'] or 0):.0f}",
                    f"{100 * (s['machine_cpu_busy'] or 0):.0f}/{100 * (w['machine_cpu_busy'] or 0):.0f}",
                    ok,
                ]
            )
        parts += [
            "",
            f"(a) claim + complete throughput: store and raw each run {result['throughput_limit_s']:g} s"
            " (or until drained) in alternating slices (aim: store/raw >= 0.9)",
            _table(
                [
                    "procs",
                    "per claim",
                    "windows done s/r",
                    "store w/s",
                    "raw w/s",
                    "store/raw",
                    "store cpu us/w",
                    "raw cpu us/w",
                    "idle busy% s/r",
                    "busy% s/r",
                    "exactly once",
                ],
                rows,
            ),
        ]
    if "create" in result:
        c = result["create"]
        parts += [
            "",
            "(b) create one year of PT1M windows (525,600 rows; aim < 5 s)",
            _table(
                [
                    "store create_windows s",
                    "raw INSERT..generate_series s",
                    "store re-run (all exist) s",
                    "ok",
                ],
                [
                    [
                        c["store_seconds"],
                        c["raw_seconds"],
                        c["store_rerun_seconds"],
                        "yes" if c["ok"] else "NO",
                    ]
                ],
            ),
        ]
    if "claim_batch" in result:
        rows = [
            [
                f"{r['windows']:,}",
                f"{r['available']:,}",
                r["layout"],
                f"{r['store']['median_s']:.4f}",
                f"{r['store']['max_s']:.4f}",
                f"{r['raw']['median_s']:.4f}",
                f"{r['raw']['max_s']:.4f}",
            ]
            for r in result["claim_batch"]
        ]
        parts += [
            "",
            "(c) claim(limit=1000) from a mostly COMPLETE table (aim: flat, < 0.25 s)",
            _table(
                [
                    "windows",
                    "AVAILABLE",
                    "layout",
                    "store median s",
                    "store max s",
                    "raw median s",
                    "raw max s",
                ],
                rows,
            ),
        ]
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------------------------


def _start_server() -> tuple[str, Any]:
    # tests/pg.py by path: putting the repository on sys.path would shadow a dagster_dtc given by PYTHONPATH
    spec = importlib.util.spec_from_file_location("dtc_tests_pg", REPO / "tests" / "pg.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    server = module.EmbeddedServer.start()
    return server.url, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller tables (10,000 windows per scenario)")
    parser.add_argument(
        "--only", default="throughput,create,claim_batch", help="comma-separated parts to run"
    )
    parser.add_argument("--procs", default="1,4,8", help="worker process counts for (a)")
    parser.add_argument(
        "--windows", type=int, help="windows per throughput scenario (default 100,000; quick 10,000)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help="seconds of work per side and scenario (default 24; quick 8); 0 = run until drained",
    )
    parser.add_argument(
        "--url", help="benchmark this server instead of a throwaway embedded one (bench_* tables)"
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        help="set synchronous_commit on the throwaway server (default: leave the server default)",
    )
    parser.add_argument("--out", type=Path, help="JSON output file (default benchmarks/results/<time>.json)")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    procs = [int(p) for p in args.procs.split(",")]
    windows = args.windows or (10_000 if args.quick else 100_000)
    limit_s = args.seconds if args.seconds is not None else (8.0 if args.quick else 24.0)
    limit_s = limit_s or 1e9

    started = time.monotonic()
    server = None
    if args.url:
        url = args.url
    else:
        _progress("starting a throwaway PostgreSQL server ...")
        url, server = _start_server()
    workers = None
    try:
        if args.synchronous_commit:
            if server is None:
                parser.error("--synchronous-commit needs the throwaway server (no --url)")
            with _connect(url) as conn:
                conn.execute(f"ALTER SYSTEM SET synchronous_commit = {args.synchronous_commit}")
                conn.execute("SELECT pg_reload_conf()")
        result: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(url),
        }
        _progress(report({**result}).split("\n")[0])
        if "throughput" in parts:
            _progress(
                f"(a) throughput: {windows:,} windows per table, store and raw {limit_s:g} s each; "
                f"starting {max(procs)} workers ..."
            )
            result["throughput_limit_s"] = limit_s
            workers = Workers(max(procs))
            result["throughput"] = bench_throughput(url, workers, procs, windows, limit_s)
        if "create" in parts:
            _progress("(b) create one year of PT1M windows ...")
            result["create"] = bench_create(url)
        if "claim_batch" in parts:
            sizes = [10_000, 100_000 if args.quick else 1_000_000]
            _progress(f"(c) claim(limit=1000) from tables of {sizes} windows ...")
            result["claim_batch"] = bench_claim_batch(url, sizes, reps=5)
    finally:
        if workers is not None:
            workers.close()
        if server is not None:
            server.destroy()
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["total_seconds"] = round(time.monotonic() - started, 1)
    print(report(result))
    out = args.out or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{result['mode']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten to {out}")
    failed = [
        r
        for r in result.get("throughput", [])
        if not (r["store"]["verify"]["ok"] and r["raw"]["verify"]["ok"])
    ]
    if failed or not result.get("create", {"ok": True})["ok"]:
        print("VERIFICATION FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
