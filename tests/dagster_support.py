"""Small Dagster definitions shared by the Dagster-layer tests."""

from datetime import datetime, timedelta, timezone

import psycopg
from dagster import (
    DagsterInstance,
    Failure,
    OpExecutionContext,
    RetryPolicy,
    RunRequest,
    asset,
    define_asset_job,
    job,
    op,
)

from dagster_dtc import DTCResource, DTCTask, DTCWindowConfig

UTC = timezone.utc
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAILY = DTCTask("daily_report", "P1D", start=TODAY - timedelta(days=5), backlog=30)
PARTITIONED = DTCTask("daily_asset", "P1D", start=TODAY - timedelta(days=5), backlog=30)

# What the ops saw, keyed by run id, so tests can check the window handed to user code.
SEEN: dict[str, dict] = {}


class WindowConfig(DTCWindowConfig):
    fail: bool = False
    skip: bool = False
    reopen_while_running: bool = False
    fail_first_attempts: int = 0


@op(retry_policy=RetryPolicy(max_retries=2))
def process_window(context: OpExecutionContext, dtc: DTCResource, config: WindowConfig) -> None:
    with dtc.window(context, DAILY, config) as window:
        SEEN[context.run_id] = {
            "start": window.start,
            "end": window.end,
            "claim": window.claim.generation if window.claim else None,
            "retry": context.retry_number,
        }
        if config.reopen_while_running:
            with psycopg.connect(dtc.get_store().database_url, autocommit=True) as conn:
                conn.execute(
                    f"UPDATE {dtc.table} SET status = 'AVAILABLE' WHERE name = %s AND bucket_time = %s",
                    (DAILY.name, window.start),
                )
        if context.retry_number < config.fail_first_attempts:
            raise RuntimeError(f"flaky source, attempt {context.retry_number}")
        if config.fail:
            raise Failure(description="source said no")
        if config.skip:
            window.skip("nothing to count")
        window.add_metadata({"rows": 3})


@job
def window_job() -> None:
    process_window()


@op
def explode_first() -> None:
    raise RuntimeError("upstream broke before the window op ran")


@job
def broken_job() -> None:
    explode_first()


@asset(partitions_def=PARTITIONED.partitions_def)
def daily_asset(context, dtc: DTCResource) -> None:
    with dtc.window(context, PARTITIONED) as window:
        seen = {"start": window.start, "end": window.end, "partition": context.partition_key}
        SEEN[context.run.run_id] = seen


daily_asset_job = define_asset_job("daily_asset_job", selection=[daily_asset])


def execute(job_def, request: RunRequest, instance: DagsterInstance, dtc: DTCResource, **extra):
    """Run what a RunRequest asks for, in process, the way the daemon would."""
    run_config = request.run_config or {}
    return job_def.execute_in_process(
        run_config=run_config,
        tags={**request.tags, "dagster/run_key": request.run_key},
        instance=instance,
        resources={"dtc": dtc},
        partition_key=request.partition_key,
        raise_on_error=False,
        **extra,
    )


def database_url_of(dtc: DTCResource) -> str:
    return dtc.get_store().database_url
