"""Helpers shared by the core store tests, and the bodies of their worker processes.

Worker functions live here rather than in test modules so that ``spawn`` children import only this
module (and dagster_dtc), not pytest fixtures.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

UTC = timezone.utc
T = TypeVar("T")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wait_for(
    check: Callable[[], T], timeout: float, every: float = 0.05, what: str = "condition"
) -> tuple[T, float]:
    """Poll ``check`` until it returns something truthy; return it and the seconds it took."""
    start = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - start
        if value:
            return value, elapsed
        if elapsed > timeout:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(every)


def raw_rows(url: str, table: str, name: str | None = None) -> list[dict[str, Any]]:
    """Every column (revision included) of the rows of ``name``, straight from SQL."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        query = sql.SQL("SELECT * FROM {} {} ORDER BY name, bucket_time").format(
            sql.Identifier(table), sql.SQL("WHERE name = %s" if name is not None else "")
        )
        return conn.execute(query, (name,) if name is not None else ()).fetchall()


def raw_row(url: str, table: str, name: str, bucket: datetime) -> dict[str, Any] | None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {} WHERE name = %s AND bucket_time = %s").format(sql.Identifier(table)),
            (name, bucket),
        ).fetchone()


def execute(url: str, statement: str, params: tuple[Any, ...] = ()) -> int:
    """Run one plain SQL statement on its own connection, as an external system would."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).rowcount  # type: ignore[arg-type]


# -- worker process bodies -------------------------------------------------------------------------


def claim_and_complete_worker(
    url: str, table: str, name: str, log_table: str, worker: str, barrier: Any, batch: int
) -> int:
    """Claim and complete windows until none are left; log each completion in ``log_table``."""
    from dagster_dtc import TaskStore

    done = 0
    store = TaskStore(url, table, lease_seconds=30, backoff_base=0.0, backoff_max=0.0, pool_size=2)
    with store, psycopg.connect(url, autocommit=True) as log:
        barrier.wait(timeout=60)
        empty_rounds = 0
        while empty_rounds < 3:
            claims = store.claim(name, limit=batch, worker=worker)
            if not claims:
                empty_rounds += 1
                time.sleep(0.05)
                continue
            empty_rounds = 0
            for claim in claims:
                task = claim.complete(f"done by {worker}")
                log.execute(
                    sql.SQL(
                        "INSERT INTO {} (name, bucket_time, generation, worker, status) "
                        "VALUES (%s, %s, %s, %s, %s)"
                    ).format(sql.Identifier(log_table)),
                    (claim.name, claim.bucket_time, claim.generation, worker, task.status.value),
                )
                done += 1
    return done


def report_to(queue: Any, target: Callable[..., Any], *args: Any) -> None:
    """Run ``target(*args)`` in a child process and put ``("ok", result)`` or ``("error", text)``."""
    try:
        queue.put(("ok", target(*args)))
    except BaseException as exc:
        import traceback

        queue.put(("error", "".join(traceback.format_exception(exc))))


def init_schema_worker(url: str, table: str) -> list[str]:
    from dagster_dtc import TaskStore

    store = TaskStore(url, table)
    try:
        return store.init_schema()
    finally:
        store.close()


def hold_forever_worker(url: str, table: str, name: str, lease: float, ready_path: str) -> None:
    """Claim one window inside ``with claim:`` (heartbeats running), report it, then hang."""
    from dagster_dtc import TaskStore

    store = TaskStore(url, table, lease_seconds=lease, backoff_base=0.0, backoff_max=0.0)
    claims = store.claim(name, limit=1, worker=f"doomed-{os.getpid()}")
    assert claims, "nothing to claim"
    with claims[0] as claim:
        with open(ready_path + ".tmp", "w") as fh:
            fh.write(f"{claim.bucket_time.isoformat()} {claim.generation}")
        os.rename(ready_path + ".tmp", ready_path)
        while True:  # busy "processing" until SIGKILL arrives
            time.sleep(0.05)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
