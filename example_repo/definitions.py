"""The dagster-dtc example code location.

Two recurring jobs, each driven by a DTC sensor that claims its windows:

* ``call_mom`` — the seed's toy: a ``P1D`` window at 00:00Z, as a daily-partitioned asset, so the
  asset's partition view is the DTC calendar.
* ``readings_report`` — the motivating job: every ``PT5M`` window of a flaky source's ``readings``
  is counted by site, by quality and by sensor, and the report goes to the ``example.reports``
  outbox. A failed window goes back to AVAILABLE and is retried after a backoff; a window reopened
  after late data (``python -m example_repo.late_data``) is counted again and its report replaced.
"""

import os
from datetime import datetime, timezone

from dagster import (
    AssetExecutionContext,
    Definitions,
    EnvVar,
    OpExecutionContext,
    asset,
    define_asset_job,
    job,
    op,
)

from dagster_dtc import DTCResource, DTCTask, DTCWindowConfig, dtc_sensor
from example_repo.source import SourceDatabase

UTC = timezone.utc

call_mom = DTCTask("call_mom", "P1D", start=datetime(2026, 11, 1, tzinfo=UTC), backlog=14)

readings_report = DTCTask(
    "readings_report",
    "PT5M",
    start=datetime(2026, 12, 1, tzinfo=UTC),
    backlog=12,  # make sure the last hour of windows exists on every tick
)


@asset(partitions_def=call_mom.partitions_def, group_name="dtc_example")
def mom_called(context: AssetExecutionContext, dtc: DTCResource) -> None:
    """Call mom once per day; Saturdays are skipped."""
    with dtc.window(context, call_mom) as window:
        if window.start.weekday() == 5:
            window.skip("Saturday: mom is out")
            return
        context.log.info(f"called mom for {window.start:%A %Y-%m-%d}")
        window.set_message("talked for 20 minutes")


call_mom_job = define_asset_job("call_mom_job", selection=[mom_called])


class ReportConfig(DTCWindowConfig):
    """The window (filled in by the sensor) plus nothing else; extend it with your own fields."""


@op
def count_readings(
    context: OpExecutionContext, dtc: DTCResource, source: SourceDatabase, config: ReportConfig
) -> None:
    """Count the readings of one window, grouped three ways, and publish the report."""
    with dtc.window(context, readings_report, config) as window:
        source.fill(window.start, window.end)  # stands in for the live feed
        counts = source.count(window.start, window.end)
        revision = source.publish(readings_report.name, window.start, window.end, counts, context.run_id)
        window.set_message(f"{counts['total']} readings; report revision {revision}")
        window.add_metadata(
            {"total": counts["total"], "by_site": dict(counts["by_site"]), "report_revision": revision}
        )


@job(tags={"dagster/max_retries": 0})
def readings_report_job() -> None:
    count_readings()


defs = Definitions(
    assets=[mom_called],
    jobs=[call_mom_job, readings_report_job],
    sensors=[
        dtc_sensor(call_mom, job=call_mom_job, minimum_interval_seconds=15, max_claims_per_tick=7),
        dtc_sensor(
            readings_report, job=readings_report_job, minimum_interval_seconds=15, max_claims_per_tick=6
        ),
    ],
    resources={
        "dtc": DTCResource(
            database_url=EnvVar("DTC_DATABASE_URL") if os.environ.get("DTC_DATABASE_URL") else None,
            lease_seconds=float(os.environ.get("DTC_LEASE_SECONDS", "60")),
            backoff_base_seconds=float(os.environ.get("DTC_BACKOFF_SECONDS", "20")),
        ),
        "source": SourceDatabase(
            failure_rate=float(os.environ.get("EXAMPLE_SOURCE_FAILURE_RATE", "0.1")),
            latency_seconds=float(os.environ.get("EXAMPLE_SOURCE_LATENCY_SECONDS", "0")),
        ),
    },
)
