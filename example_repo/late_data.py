"""Late data arrives for a past window: add readings to it and reopen it with plain SQL.

    python -m example_repo.late_data                       # the newest COMPLETE window
    python -m example_repo.late_data 2026-12-03T10:05:00Z  # a given window

The reopen is the statement any other service would run (see README, "Reopening from outside"):

    UPDATE dtc_tasks SET status = 'AVAILABLE'
    WHERE name = 'readings_report' AND bucket_time >= %s AND bucket_time < %s;

The sensor's next tick claims the window again under a new run_key, and its report is replaced.
"""

from __future__ import annotations

import sys

import psycopg

from dagster_dtc import TaskStore, parse_time
from example_repo.definitions import readings_report
from example_repo.source import SourceDatabase

REOPEN_SQL = (
    "UPDATE dtc_tasks SET status = 'AVAILABLE' WHERE name = %s AND bucket_time >= %s AND bucket_time < %s"
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    store = TaskStore()
    store.init_schema()
    if args:
        start = readings_report.grid.check_bucket(parse_time(args[0]), "window")
    else:
        done = store.query(readings_report.name, ["COMPLETE"])
        if not done:
            print(
                "no COMPLETE readings_report window yet; let `dagster dev` run for a few minutes",
                file=sys.stderr,
            )
            return 1
        start = done[-1].bucket_time
    end = readings_report.grid.end(start)
    added = SourceDatabase().add_late_readings(start, end)
    with psycopg.connect(store.database_url, autocommit=True) as conn:
        reopened = conn.execute(REOPEN_SQL, (readings_report.name, start, end)).rowcount
    print(
        f"added {added} late readings to [{start.isoformat()}, {end.isoformat()}); reopened {reopened} window"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
