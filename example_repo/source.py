"""The example's flaky source database: a `readings` table and the `reports` outbox.

Readings are synthetic and deterministic: every sensor reports once a minute, with a few gaps, so
counts per window are reproducible. `fill` is idempotent.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

import psycopg
from dagster import ConfigurableResource
from pydantic import Field

from dagster_dtc.database import resolve_database_url

SENSORS = [("s1", "north"), ("s2", "north"), ("s3", "south"), ("s4", "south"), ("s5", "east")]

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS example;
CREATE TABLE IF NOT EXISTS example.readings (
    sensor_id text NOT NULL,
    site      text NOT NULL,
    ts        timestamptz NOT NULL,
    quality   text NOT NULL,
    value     double precision,
    PRIMARY KEY (sensor_id, ts)
);
-- The outbox downstream systems read: one row per window, replaced (revision + 1) on a re-run.
CREATE TABLE IF NOT EXISTS example.reports (
    task         text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    revision     integer NOT NULL DEFAULT 1,
    total        integer NOT NULL,
    by_site      jsonb NOT NULL,
    by_quality   jsonb NOT NULL,
    by_sensor    jsonb NOT NULL,
    run_id       text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task, window_start)
);
"""

# "Count the values present, grouped several ways": one scan, four groupings.
COUNT_SQL = """
SELECT site, quality, sensor_id, count(*) AS n
FROM example.readings
WHERE ts >= %(start)s AND ts < %(end)s AND value IS NOT NULL
GROUP BY GROUPING SETS ((site), (quality), (sensor_id), ())
"""

PUBLISH_SQL = """
INSERT INTO example.reports AS r
    (task, window_start, window_end, total, by_site, by_quality, by_sensor, run_id)
VALUES (%(task)s, %(start)s, %(end)s, %(total)s, %(by_site)s, %(by_quality)s, %(by_sensor)s, %(run_id)s)
ON CONFLICT (task, window_start) DO UPDATE
SET revision = r.revision + 1, total = EXCLUDED.total, by_site = EXCLUDED.by_site,
    by_quality = EXCLUDED.by_quality, by_sensor = EXCLUDED.by_sensor, run_id = EXCLUDED.run_id,
    published_at = now()
RETURNING revision
"""


class SourceUnavailable(Exception):
    """The source database did not answer (simulated with `failure_rate`)."""


def _rows(start: datetime, end: datetime) -> list[tuple[str, str, datetime, str, float | None]]:
    minute = start.replace(second=0, microsecond=0)
    rows = []
    while minute < end:
        for sensor_id, site in SENSORS:
            rng = random.Random(f"{sensor_id}{minute.isoformat()}")
            roll = rng.random()
            if roll < 0.05:
                continue  # a gap: the sensor did not report
            quality = "good" if roll < 0.85 else "suspect"
            value = None if roll > 0.97 else round(rng.uniform(0, 100), 2)
            rows.append((sensor_id, site, minute, quality, value))
        minute += timedelta(minutes=1)
    return rows


class SourceDatabase(ConfigurableResource):
    """Where readings come from and reports go. Defaults to the DTC database (embedded or
    $DTC_DATABASE_URL), in schema `example`."""

    url: str | None = Field(default=None, description="PostgreSQL URL of the source database.")
    failure_rate: float = Field(default=0.0, description="Chance that a query fails (0..1).")
    latency_seconds: float = Field(default=0.0, description="Seconds each count takes (a slow source).")

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(resolve_database_url(self.url), autocommit=True)
        conn.execute(SCHEMA_SQL)
        return conn

    def fill(self, start: datetime, end: datetime) -> int:
        """Make sure readings for [start, end) exist (the 'live feed'); returns rows added."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO example.readings VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                _rows(start, end),
            )
            return cur.rowcount

    def count(self, start: datetime, end: datetime) -> dict:
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)
        if random.random() < self.failure_rate:
            raise SourceUnavailable(
                f"source database timed out counting {start.isoformat()}..{end.isoformat()}"
            )
        counts: dict = {"total": 0, "by_site": {}, "by_quality": {}, "by_sensor": {}}
        with self.connect() as conn:
            for site, quality, sensor_id, n in conn.execute(COUNT_SQL, {"start": start, "end": end}):
                if site is not None:
                    counts["by_site"][site] = n
                elif quality is not None:
                    counts["by_quality"][quality] = n
                elif sensor_id is not None:
                    counts["by_sensor"][sensor_id] = n
                else:
                    counts["total"] = n
        return counts

    def publish(self, task: str, start: datetime, end: datetime, counts: dict, run_id: str) -> int:
        from psycopg.types.json import Jsonb

        with self.connect() as conn:
            row = conn.execute(
                PUBLISH_SQL,
                {
                    "task": task,
                    "start": start,
                    "end": end,
                    "total": counts["total"],
                    "by_site": Jsonb(counts["by_site"]),
                    "by_quality": Jsonb(counts["by_quality"]),
                    "by_sensor": Jsonb(counts["by_sensor"]),
                    "run_id": run_id,
                },
            ).fetchone()
            return row[0] if row else 0

    def add_late_readings(self, start: datetime, end: datetime, per_sensor: int = 3) -> int:
        """Readings that arrive after their window was reported (off-minute timestamps)."""
        rows = []
        for sensor_id, site in SENSORS:
            for i in range(per_sensor):
                ts = start + (end - start) * (i + 0.5) / per_sensor + timedelta(seconds=17)
                rows.append((sensor_id, site, ts, "late", 42.0))
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO example.readings VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows
            )
            return cur.rowcount
