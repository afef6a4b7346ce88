#!/usr/bin/env python
"""Benchmark one tick of ``dtc_sensor`` in process, Dagster's own overhead included.

    python benchmarks/bench_sensor.py            # tables of 10,000 and 1,000,000 windows (~2 minutes)
    python benchmarks/bench_sensor.py --quick    # tables of 10,000 and 100,000 windows, 3 ticks each

Each tick is ``build_sensor_context(instance=..., resources={"dtc": ...}, definitions=...)`` and the
sensor's evaluation, on a real ``instance_for_test()`` DagsterInstance, with
``max_claims_per_tick=1000`` against a table of PT1M windows that are COMPLETE but for the newest
5,000 (AVAILABLE). Scenarios, each the median of several ticks (claims reset by SQL in between):

- first tick: nothing held; claims 1,000;
- second tick, runs missing: the previous tick's 1,000 claims are held and Dagster never created
  their runs (worst case: reconcile renews and re-requests all 1,000, then 1,000 new are claimed);
- second tick, runs queued: the 1,000 runs exist (NOT_STARTED, as the daemon leaves them); reconcile
  renews their leases, then 1,000 new are claimed;
- idle tick: a table of the same size with every window COMPLETE (nothing to claim: the tick ends
  with the skip reason).

Then the memory of a tick with 10,000 claims (``max_claims_per_tick=10000``), in a fresh process:
tracemalloc peak of Python allocations, and peak RSS over the pre-tick RSS.

Figures are printed and written as JSON to ``benchmarks/results/`` (git-ignored).
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
UTC = timezone.utc
NAME = "bench_sensor"
CLAIMS_PER_TICK = 1000
AVAILABLE = 5000
MEMORY_CLAIMS = 10_000
MEMORY_WINDOWS = 50_000
# A fixed deployment id in the sensor cursor, so every tick (and the memory child) has one owner.
CURSOR = json.dumps({"deployment": "benchsensor1"})

sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore")  # Dagster's beta/deprecation notices, on every sensor built

from dagster import (  # noqa: E402
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    OpExecutionContext,
    SensorResult,
    build_sensor_context,
    instance_for_test,
    job,
    op,
)

from dagster_dtc import DTCResource, DTCTask, DTCWindowConfig, dtc_sensor  # noqa: E402
from dagster_dtc import sensor as sensor_module  # noqa: E402
from dagster_dtc.store import TaskStore  # noqa: E402


@op
def bench_window(context: OpExecutionContext, dtc: DTCResource, config: DTCWindowConfig) -> None:
    """Never executed here: the sensor only needs a job whose op takes the window config."""


@job
def bench_job() -> None:
    bench_window()


# -- helpers ---------------------------------------------------------------------------------------


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def machine(url: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import dagster

    with _connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "postgresql": row[0] if row else "?",
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _task(interval: str = "PT1M") -> DTCTask:
    return DTCTask(NAME, interval, backlog=7)


def _resource(url: str, table: str) -> DTCResource:
    return DTCResource(database_url=url, table=table, backoff_base_seconds=0, backoff_max_seconds=0)


def _drop(url: str, table: str) -> None:
    with _connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        if conn.execute("SELECT to_regclass('dtc_schema_migrations') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            conn.execute("DELETE FROM dtc_schema_migrations WHERE table_name = %s", (table,))
        conn.execute(f"DROP FUNCTION IF EXISTS {table}_guard()")


def fill(url: str, table: str, task: DTCTask, size: int, available: int) -> None:
    """``size`` windows of ``task`` ending with the newest due one; the newest ``available`` are
    AVAILABLE, the rest COMPLETE (each claimed and finished once). One INSERT ... generate_series."""
    _drop(url, table)
    store = TaskStore(url, table)
    store.init_schema()
    span = task.due_range(store.now())
    assert span is not None
    last = task.grid.shift(span[1], -1)
    first = task.grid.shift(last, -(size - 1))
    store.close()
    done = f"i < {size - available}"
    with _connect(url) as conn:
        conn.execute(
            f"INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, "
            "acquired_by, acquired_at, completed_at, generation, attempt, revision, max_attempts) "
            f"SELECT %(name)s, %(first)s::timestamptz + i * %(step)s::interval, %(step)s::interval, "
            f"CASE WHEN {done} THEN 'COMPLETE' ELSE 'AVAILABLE' END, 'bench', now(), "
            f"CASE WHEN {done} THEN 'bench' END, CASE WHEN {done} THEN now() END, "
            f"CASE WHEN {done} THEN now() END, (CASE WHEN {done} THEN 1 ELSE 0 END), "
            f"(CASE WHEN {done} THEN 1 ELSE 0 END), 0, 10 "
            "FROM generate_series(0, %(n)s) AS i",
            {"name": task.name, "first": first, "step": task.interval, "n": size - 1},
        )
        conn.execute(f"VACUUM ANALYZE {table}")


def reset(url: str, table: str) -> int:
    """Put every held window back to AVAILABLE as if never claimed, claim token included (each was
    claimed once since the last reset). Bumps revision, so the guard trigger leaves it alone."""
    with _connect(url) as conn:
        cur = conn.execute(
            f"UPDATE {table} SET status = 'AVAILABLE', acquired_by = NULL, acquired_at = NULL, "
            "lease_expires_at = NULL, attempt = 0, not_before = NULL, reopen_requested = false, "
            "generation = generation - 1, revision = revision + 1 WHERE status = 'ACQUIRED'"
        )
        return cur.rowcount


def hold(url: str, table: str, owner: str, count: int) -> int:
    """Make the oldest ``count`` AVAILABLE windows held by ``owner``, the way a tick's claim leaves them."""
    with _connect(url) as conn:
        cur = conn.execute(
            f"UPDATE {table} AS t SET status = 'ACQUIRED', generation = t.generation + 1, "
            "revision = t.revision + 1, attempt = t.attempt + 1, acquired_by = %(owner)s, "
            "acquired_at = now(), lease_expires_at = now() + interval '1 hour' "
            f"FROM (SELECT name, bucket_time FROM {table} WHERE status = 'AVAILABLE' "
            "ORDER BY bucket_time LIMIT %(n)s) AS c "
            "WHERE t.name = c.name AND t.bucket_time = c.bucket_time",
            {"owner": owner, "n": count},
        )
        return cur.rowcount


def owner_of(sensor_name: str) -> str:
    return f"dagster-sensor:{json.loads(CURSOR)['deployment']}:{sensor_name}"


class Phases:
    """Wall time spent in the sensor's steps, by wrapping them for the duration of a tick."""

    TARGETS: tuple[tuple[Any, str], ...] = (
        (sensor_module._Tick, "reconcile"),
        (sensor_module._Tick, "_runs_by_key"),
        (sensor_module._Tick, "ensure_windows"),
        (sensor_module._Tick, "claim_new"),
        (TaskStore, "held_by"),
        (TaskStore, "renew_many"),
        (TaskStore, "explain_empty_claim"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._gc_start = 0.0

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        # Collections of the oldest generation are what cost: the Dagster process holds many objects.
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.seconds["gc"] = self.seconds.get("gc", 0.0) + time.perf_counter() - self._gc_start

    @contextmanager
    def recording(self) -> Iterator[None]:
        gc.callbacks.append(self._gc)
        saved = []
        for owner, attr in self.TARGETS:
            original = getattr(owner, attr, None)
            if original is None:
                continue
            saved.append((owner, attr, original))
            setattr(owner, attr, self._wrap(attr, original))
        try:
            yield
        finally:
            gc.callbacks.remove(self._gc)
            for owner, attr, original in saved:
                setattr(owner, attr, original)

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t

        return timed


def tick(sensor: Any, instance: DagsterInstance, dtc: DTCResource, defs: Definitions) -> dict[str, Any]:
    """One timed tick: building the context plus evaluating the sensor."""
    phases = Phases()
    t0 = time.perf_counter()
    context = build_sensor_context(instance=instance, resources={"dtc": dtc}, definitions=defs, cursor=CURSOR)
    t1 = time.perf_counter()
    with phases.recording():
        result = sensor(context)
    t2 = time.perf_counter()
    assert isinstance(result, SensorResult), result
    return {
        "seconds": t2 - t0,
        "context_s": t1 - t0,
        "evaluate_s": t2 - t1,
        "phases": phases.seconds,
        "requests": result.run_requests or [],
        "skip": result.skip_reason.skip_message if result.skip_reason else None,
    }


def create_runs(instance: DagsterInstance, requests: list[Any]) -> float:
    """What the daemon does with a tick's requests: a NOT_STARTED run per request, tagged with its run_key."""
    t = time.perf_counter()
    for request in requests:
        instance.create_run_for_job(
            job_def=bench_job,
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
            status=DagsterRunStatus.NOT_STARTED,
        )
    return time.perf_counter() - t


def _summary(ticks: list[dict[str, Any]]) -> dict[str, Any]:
    times = [t["seconds"] for t in ticks]
    labels = sorted({k for t in ticks for k in t["phases"]})
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "all_s": [round(x, 4) for x in times],
        "context_median_s": round(statistics.median(t["context_s"] for t in ticks), 4),
        "phase_median_s": {
            k: round(statistics.median(t["phases"].get(k, 0.0) for t in ticks), 4) for k in labels
        },
        "requests": [len(t["requests"]) for t in ticks],
        "skip": ticks[-1]["skip"],
    }


# -- tick timings ----------------------------------------------------------------------------------


@contextmanager
def _instance() -> Iterator[DagsterInstance]:
    """A fresh ``instance_for_test()`` (SQLite storage) kept on tmpfs when there is one, so that
    creating runs in setup is not bound by fsync."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with (
        tempfile.TemporaryDirectory(prefix="dtc-bench-", dir=shm) as tmp,
        instance_for_test(temp_dir=tmp) as inst,
    ):
        yield inst


def bench_ticks(url: str, size: int, reps: int) -> dict[str, Any]:
    task = _task()
    table = f"bench_sensor_{size}"
    _progress(f"  filling {size:,} windows ...")
    fill(url, table, task, size, AVAILABLE)
    dtc = _resource(url, table)
    sensor = dtc_sensor(task, job=bench_job, max_claims_per_tick=CLAIMS_PER_TICK)
    defs = Definitions(jobs=[bench_job], sensors=[sensor], resources={"dtc": dtc})
    out: dict[str, Any] = {"windows": size, "available": AVAILABLE}
    dtc.get_store().now()  # schema check and pool opened before the clock starts
    with _instance() as instance:
        tick(sensor, instance, dtc, defs)  # warm-up (imports, repository build, first queries)
        reset(url, table)

        first = []
        for _ in range(reps):
            result = tick(sensor, instance, dtc, defs)
            assert len(result["requests"]) == CLAIMS_PER_TICK, len(result["requests"])
            first.append(result)
            reset(url, table)
        out["first_tick"] = _summary(first)
        _report_line(size, "first tick (0 held)", out["first_tick"])

        missing = []
        for _ in range(reps):
            before = tick(sensor, instance, dtc, defs)
            result = tick(sensor, instance, dtc, defs)
            again = {r.run_key for r in before["requests"]}
            keys = {r.run_key for r in result["requests"]}
            assert again <= keys and len(keys) == 2 * CLAIMS_PER_TICK, (len(again & keys), len(keys))
            missing.append(result)
            reset(url, table)
        out["held_runs_missing"] = _summary(missing)
        _report_line(size, "1,000 held, runs missing", out["held_runs_missing"])

    # reset() restores each window's claim token, so every repetition's first tick claims the same
    # windows under the same run_keys: the runs the daemon would have made are created once.
    with _instance() as instance:
        queued, create_s = [], 0.0
        for rep in range(reps):
            before = tick(sensor, instance, dtc, defs)
            if rep == 0:
                create_s = create_runs(instance, before["requests"])
            result = tick(sensor, instance, dtc, defs)
            keys = {r.run_key for r in result["requests"]}
            assert len(keys) == CLAIMS_PER_TICK and not keys & {r.run_key for r in before["requests"]}
            queued.append(result)
            reset(url, table)
        out["held_runs_queued"] = _summary(queued)
        out["create_run_for_job_1000_s"] = round(create_s, 2)
        _report_line(size, "1,000 held, runs queued", out["held_runs_queued"])
    dtc.get_store().close()
    _drop(url, table)

    # Idle: every window COMPLETE, none held; the tick only checks and explains why it has nothing.
    fill(url, table, task, size, 0)
    dtc = _resource(url, table)
    sensor = dtc_sensor(task, job=bench_job, max_claims_per_tick=CLAIMS_PER_TICK)
    defs = Definitions(jobs=[bench_job], sensors=[sensor], resources={"dtc": dtc})
    dtc.get_store().now()
    with _instance() as instance:
        tick(sensor, instance, dtc, defs)
        idle = []
        for _ in range(reps):
            result = tick(sensor, instance, dtc, defs)
            reset(url, table)  # a minute may have rolled over and its new window been claimed
            idle.append(result)
        out["idle"] = _summary(idle)
        _report_line(size, "idle (all COMPLETE)", out["idle"])
    dtc.get_store().close()
    _drop(url, table)
    return out


def _report_line(size: int, label: str, s: dict[str, Any]) -> None:
    _progress(
        f"  {size:>9,} windows, {label:26s}: median {s['median_s']:.3f} s "
        f"(min {s['min_s']:.3f}, max {s['max_s']:.3f}); phases {s['phase_median_s']}"
    )


# -- memory ----------------------------------------------------------------------------------------


class RssSampler:
    """Highest RSS seen by a thread sampling every millisecond (ru_maxrss cannot go below an earlier peak)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def memory_child(url: str, table: str, held: int) -> dict[str, Any]:
    """In a fresh process: one tick with ``max_claims_per_tick=10000`` (after ``held`` windows were
    made held by the sensor, runs missing), measured for RSS; then the same again under tracemalloc."""
    task = _task()
    dtc = _resource(url, table)
    sensor = dtc_sensor(task, job=bench_job, max_claims_per_tick=MEMORY_CLAIMS)
    defs = Definitions(jobs=[bench_job], sensors=[sensor], resources={"dtc": dtc})
    out: dict[str, Any] = {"held": held, "max_claims_per_tick": MEMORY_CLAIMS}
    dtc.get_store().now()
    with _instance() as instance:
        build_sensor_context(instance=instance, resources={"dtc": dtc}, definitions=defs, cursor=CURSOR)
        reset(url, table)
        owner = owner_of(sensor.name)
        if held:
            assert hold(url, table, owner, held) == held
        gc.collect()
        rss0 = psutil.Process().memory_info().rss
        maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with RssSampler() as sampler:
            result = tick(sensor, instance, dtc, defs)
        maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        requests = len(result["requests"])
        out.update(
            requests=requests,
            seconds=round(result["seconds"], 3),
            rss_before_mib=round(rss0 / 2**20, 1),
            rss_peak_delta_mib=round((sampler.peak - rss0) / 2**20, 1),
            ru_maxrss_delta_mib=round((maxrss1 - max(maxrss0, rss0)) / 2**20, 1),
        )
        del result
        reset(url, table)
        if held:
            hold(url, table, owner, held)
        gc.collect()
        tracemalloc.start()
        result = tick(sensor, instance, dtc, defs)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(result["requests"]) == requests
        out.update(
            tracemalloc_peak_mib=round(peak / 2**20, 1), tracemalloc_seconds=round(result["seconds"], 3)
        )
        reset(url, table)
    dtc.get_store().close()
    return out


def bench_memory(url: str) -> list[dict[str, Any]]:
    table = "bench_sensor_mem"
    fill(url, table, _task(), MEMORY_WINDOWS, 3 * MEMORY_CLAIMS)
    rows = []
    for held in (0, MEMORY_CLAIMS):
        cmd = [
            sys.executable,
            __file__,
            "--memory-child",
            json.dumps({"url": url, "table": table, "held": held}),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child failed:\n{proc.stderr[-4000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        _progress(
            f"  tick with {held:,} held + {MEMORY_CLAIMS:,} claims ({row['requests']:,} requests): "
            f"{row['seconds']:.2f} s, tracemalloc peak {row['tracemalloc_peak_mib']} MiB, "
            f"RSS +{row['rss_peak_delta_mib']} MiB (ru_maxrss +{row['ru_maxrss_delta_mib']} MiB)"
        )
    _drop(url, table)
    return rows


# -- report ----------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, sep, *body])


SCENARIOS = (
    ("first_tick", "first tick (0 held)"),
    ("held_runs_missing", "1,000 held, runs missing"),
    ("held_runs_queued", "1,000 held, runs queued"),
    ("idle", "idle (all COMPLETE)"),
)


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    parts = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; PostgreSQL {m['postgresql']}; "
        f"Python {m['python']}; Dagster {m['dagster']}; psycopg {m['psycopg']}",
        f"load average at start {m['loadavg_at_start']}, at end {result.get('loadavg_at_end')}; "
        f"mode {result['mode']}; total {result.get('total_seconds')} s",
    ]
    if result.get("ticks"):
        rows = []
        for size_result in result["ticks"]:
            for key, label in SCENARIOS:
                s = size_result[key]
                p = s["phase_median_s"]
                rows.append(
                    [
                        f"{size_result['windows']:,}",
                        label,
                        statistics.median(s["requests"]),
                        f"{s['median_s']:.3f}",
                        f"{s['max_s']:.3f}",
                        f"{s['context_median_s']:.3f}",
                        f"{p.get('held_by', 0):.3f}",
                        f"{p.get('_runs_by_key', 0):.3f}",
                        f"{p.get('renew_many', 0):.3f}",
                        f"{p.get('reconcile', 0):.3f}",
                        f"{p.get('ensure_windows', 0):.3f}",
                        f"{p.get('claim_new', 0):.3f}",
                        f"{p.get('explain_empty_claim', 0):.3f}",
                        f"{p.get('gc', 0):.3f}",
                    ]
                )
        parts += [
            "",
            f"sensor tick, max_claims_per_tick={CLAIMS_PER_TICK}, median of {result['reps']} ticks "
            "(aim: flat in table size, < 1 s); seconds",
            _table(
                [
                    "windows",
                    "scenario",
                    "requests",
                    "tick",
                    "max",
                    "context",
                    "held_by",
                    "get_runs",
                    "renew",
                    "reconcile",
                    "ensure",
                    "claim",
                    "explain",
                    "gc",
                ],
                rows,
            ),
            "(tick = build_sensor_context + evaluation; reconcile includes held_by, get_runs and renew "
            "(renew_many: every lease in one statement); claim includes building the RunRequests; gc: "
            "Python garbage collection during the tick, within whichever step it interrupted)",
        ]
        creates = ", ".join(f"{r['create_run_for_job_1000_s']} s" for r in result["ticks"])
        parts.append(f"for scale: the daemon's side, create_run_for_job x 1,000 (SQLite), took {creates}")
    if result.get("memory"):
        rows = [
            [
                f"{r['held']:,}",
                f"{r['requests']:,}",
                f"{r['seconds']:.2f}",
                r["tracemalloc_peak_mib"],
                r["rss_peak_delta_mib"],
                r["ru_maxrss_delta_mib"],
                r["rss_before_mib"],
            ]
            for r in result["memory"]
        ]
        parts += [
            "",
            f"memory of one tick with max_claims_per_tick={MEMORY_CLAIMS:,} (fresh process; MiB)",
            _table(
                [
                    "held",
                    "requests",
                    "tick s",
                    "tracemalloc peak",
                    "RSS peak delta",
                    "ru_maxrss delta",
                    "RSS before",
                ],
                rows,
            ),
            "(RSS peak: sampled every millisecond during the tick, over the RSS before it; ru_maxrss stays "
            "0 while the tick's peak is under the process's earlier high-water mark from imports)",
        ]
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 windows, 3 ticks each")
    parser.add_argument("--only", default="ticks,memory", help="comma-separated parts to run")
    parser.add_argument("--reps", type=int, help="ticks per scenario (default 7; quick 3)")
    parser.add_argument("--url", help="benchmark this server instead of a throwaway embedded one")
    parser.add_argument("--out", type=Path, help="JSON output file (default benchmarks/results/<time>.json)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        spec = json.loads(args.memory_child)
        print(json.dumps(memory_child(spec["url"], spec["table"], spec["held"])))
        return 0
    parts = set(args.only.split(","))
    reps = args.reps or (3 if args.quick else 7)
    sizes = [10_000, 100_000 if args.quick else 1_000_000]

    started = time.monotonic()
    server = None
    if args.url:
        url = args.url
    else:
        _progress("starting a throwaway PostgreSQL server ...")
        from tests.pg import EmbeddedServer

        server = EmbeddedServer.start()
        url = server.url
    try:
        result: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "reps": reps,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(url),
        }
        _progress(report(result).split("\n")[0])
        if "ticks" in parts:
            result["ticks"] = []
            for size in sizes:
                _progress(f"sensor ticks against {size:,} windows ({reps} ticks per scenario) ...")
                result["ticks"].append(bench_ticks(url, size, reps))
        if "memory" in parts:
            _progress(f"memory of a tick with {MEMORY_CLAIMS:,} claims ...")
            result["memory"] = bench_memory(url)
    finally:
        if server is not None:
            server.destroy()
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["total_seconds"] = round(time.monotonic() - started, 1)
    print(report(result))
    out = args.out or RESULTS / f"sensor-{time.strftime('%Y%m%d-%H%M%S')}-{result['mode']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
