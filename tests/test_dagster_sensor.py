"""The DTC sensor and in-run window helper, in process (build_sensor_context + execute_in_process)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    SensorResult,
    build_sensor_context,
    instance_for_test,
)

from dagster_dtc import DTCResource, Status, dtc_sensor, tags
from dagster_dtc.tags import run_key

from .dagster_support import (
    DAILY,
    PARTITIONED,
    SEEN,
    broken_job,
    daily_asset,
    daily_asset_job,
    execute,
    window_job,
)


@pytest.fixture
def dtc(database_url: str, table_name: str) -> DTCResource:
    return DTCResource(
        database_url=database_url,
        table=table_name,
        lease_seconds=30,
        backoff_base_seconds=0,
        backoff_max_seconds=0,
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def defs_for(dtc: DTCResource, *sensors) -> Definitions:
    return Definitions(
        assets=[daily_asset],
        jobs=[window_job, broken_job, daily_asset_job],
        sensors=list(sensors),
        resources={"dtc": dtc},
    )


def tick(sensor, instance: DagsterInstance, dtc: DTCResource, cursor: str | None = None) -> SensorResult:
    context = build_sensor_context(
        instance=instance, resources={"dtc": dtc}, definitions=defs_for(dtc, sensor), cursor=cursor
    )
    result = sensor(context)
    assert isinstance(result, SensorResult), result
    return result


def due_count(dtc: DTCResource) -> int:
    first, end = DAILY.due_range(dtc.get_store().now())
    return len(list(DAILY.grid.buckets(first, end)))


def test_tick_creates_due_windows_and_requests_one_run_per_claim(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=3)
    result = tick(sensor, instance, dtc)
    store = dtc.get_store()
    assert len(store.query(DAILY.name)) == due_count(dtc) == 5
    requests = result.run_requests
    assert len(requests) == 3
    held = store.query(DAILY.name, [Status.ACQUIRED])
    assert [t.bucket_time.isoformat() for t in held] == [r.tags[tags.BUCKET_TIME] for r in requests]
    for request, task in zip(requests, held, strict=True):
        assert request.run_key == run_key(DAILY.name, task.bucket_time.isoformat(), task.generation)
        assert request.tags[tags.NAME] == DAILY.name
        assert request.tags[tags.INTERVAL] == "P1D"
        assert request.tags[tags.CLAIM] == str(task.generation)
        assert request.tags[tags.OWNER] == task.acquired_by
        config = request.run_config["ops"]["process_window"]["config"]
        assert config == {"dtc_bucket_time": task.bucket_time.isoformat(), "dtc_claim": task.generation}
    assert len({r.run_key for r in requests}) == 3


def test_sensor_claims_cover_the_run_launch_with_a_longer_lease(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1, minimum_interval_seconds=60)
    (request,) = tick(sensor, instance, dtc).run_requests
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    # the resource lease is 30 s; a claim waiting for its run to start gets max(30, 4 ticks, 120 s)
    assert 235 <= (task.lease_expires_at - task.acquired_at).total_seconds() <= 245
    short = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1, launch_lease_seconds=45, name="short")
    (request,) = tick(short, instance, dtc).run_requests
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert 40 <= (task.lease_expires_at - task.acquired_at).total_seconds() <= 50


def test_run_completes_its_window_and_records_metadata(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    result = execute(window_job, request, instance, dtc)
    assert result.success
    bucket = request.tags[tags.BUCKET_TIME]
    task = next(t for t in dtc.get_store().query(DAILY.name) if t.bucket_time.isoformat() == bucket)
    assert task.status is Status.COMPLETE
    assert result.run_id in (task.message or "")
    seen = SEEN[result.run_id]
    assert seen["start"] == task.bucket_time and seen["end"] == task.window_end
    assert seen["start"].tzinfo is not None
    outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = outputs[0].event_specific_data.metadata
    assert metadata["dtc/name"].value == DAILY.name
    assert metadata["rows"].value == 3
    assert "COMPLETE" in metadata["dtc/calendar"].value


def test_op_exception_fails_window_with_message(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    request.run_config["ops"]["process_window"]["config"]["fail"] = True
    result = execute(window_job, request, instance, dtc)
    assert not result.success
    task = dtc.get_store().get(DAILY.name, DAILY.grid.check_bucket(_bucket(request)))
    assert task.status is Status.AVAILABLE
    assert task.fail_count == 1
    assert "source said no" in task.message


def test_retry_policy_keeps_the_claim_until_the_last_attempt(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    request.run_config["ops"]["process_window"]["config"]["fail_first_attempts"] = 2
    result = execute(window_job, request, instance, dtc)
    assert result.success
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert task.status is Status.COMPLETE
    assert task.fail_count == 0  # retried attempts that later succeeded are not window failures
    assert SEEN[result.run_id]["retry"] == 2


def test_skip_marks_window_skip(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    request.run_config["ops"]["process_window"]["config"]["skip"] = True
    assert execute(window_job, request, instance, dtc).success
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert task.status is Status.SKIP and task.message == "nothing to count"


def queue_runs(instance: DagsterInstance, requests) -> None:
    """What the daemon does with a tick's requests: create runs (not started yet)."""
    for request in requests:
        instance.create_run_for_job(
            job_def=window_job,
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
            status=DagsterRunStatus.NOT_STARTED,
        )


def test_nothing_to_claim_gives_a_reason(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=10)
    first = tick(sensor, instance, dtc)
    assert len(first.run_requests) == 5
    queue_runs(instance, first.run_requests)
    second = tick(sensor, instance, dtc, cursor=first.cursor)
    assert not second.run_requests
    assert "5 held by workers" in second.skip_reason.skip_message


def test_reconcile_rerequests_claims_whose_run_was_never_created(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=2)
    first = tick(sensor, instance, dtc)
    # the daemon died before creating the runs: next tick asks again with the same run_keys
    second = tick(sensor, instance, dtc, cursor=first.cursor)
    again = [r.run_key for r in second.run_requests]
    for request in first.run_requests:
        assert request.run_key in again
    # and it claimed two more new windows on top
    assert len(second.run_requests) == 4


def test_reconcile_fails_window_whose_run_failed_before_the_window_op(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    first = tick(sensor, instance, dtc)
    (request,) = first.run_requests
    # the run for this claim fails before the DTC op ever runs (e.g. an upstream op broke)
    result = execute(broken_job, request.with_replaced_attrs(run_config={}), instance, dtc)
    assert not result.success
    tick(sensor, instance, dtc, cursor=first.cursor)
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert task.fail_count == 1
    assert task.status in (Status.AVAILABLE, Status.ACQUIRED)  # may be re-claimed at once (no backoff)
    assert result.run_id in (task.message if task.status is Status.AVAILABLE else _history_message(dtc))


def test_reconcile_keeps_queued_runs_alive(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    first = tick(sensor, instance, dtc)
    (request,) = first.run_requests
    queue_runs(instance, [request])
    store = dtc.get_store()
    before = store.get(DAILY.name, _bucket(request)).lease_expires_at
    second = tick(sensor, instance, dtc, cursor=first.cursor)
    assert request.run_key not in [r.run_key for r in second.run_requests]
    task = store.get(DAILY.name, _bucket(request))
    assert task.status is Status.ACQUIRED and task.lease_expires_at > before


def test_reexecution_of_a_completed_window_refuses_unless_asked(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    assert execute(window_job, request, instance, dtc).success
    # UI re-execution copies tags and config, stale claim token included
    again = execute(window_job, request, instance, dtc)
    assert not again.success
    failure = next(e for e in again.all_events if e.event_type_value == "STEP_FAILURE")
    assert "already COMPLETE" in str(failure.event_specific_data.error.message)
    forced = request.run_config["ops"]["process_window"]["config"]
    forced["dtc_rerun_complete"] = True
    rerun = execute(window_job, request, instance, dtc)
    assert rerun.success
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert task.status is Status.COMPLETE and task.generation > request_claim(request)


def test_hand_launched_run_claims_an_available_window_and_refuses_a_held_one(dtc, instance):
    store = dtc.get_store()
    bucket = DAILY.start
    config = {"ops": {"process_window": {"config": {"dtc_bucket_time": bucket.isoformat()}}}}
    result = window_job.execute_in_process(run_config=config, instance=instance, resources={"dtc": dtc})
    assert result.success
    assert store.get(DAILY.name, bucket).status is Status.COMPLETE  # created on demand, then run
    other = DAILY.grid.next(bucket)
    store.create_window(DAILY.name, other, DAILY.grid)
    holder = store.acquire(DAILY.name, other, worker="someone-else")
    config["ops"]["process_window"]["config"]["dtc_bucket_time"] = other.isoformat()
    refused = window_job.execute_in_process(
        run_config=config, instance=instance, resources={"dtc": dtc}, raise_on_error=False
    )
    assert not refused.success
    task = store.get(DAILY.name, other)
    assert task.status is Status.ACQUIRED and task.acquired_by == "someone-else"
    assert task.generation == holder.generation


def test_window_reopened_while_running_is_left_available(dtc, instance):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=1)
    (request,) = tick(sensor, instance, dtc).run_requests
    request.run_config["ops"]["process_window"]["config"]["reopen_while_running"] = True
    result = execute(window_job, request, instance, dtc)
    assert result.success
    task = dtc.get_store().get(DAILY.name, _bucket(request))
    assert task.status is Status.AVAILABLE
    logs = " ".join(str(e.message) for e in instance.all_logs(result.run_id))
    assert "reopened while this run held it" in logs
    # the next tick claims it again under a new run_key
    nxt = tick(sensor, instance, dtc)
    assert any(r.tags[tags.BUCKET_TIME] == request.tags[tags.BUCKET_TIME] for r in nxt.run_requests)
    assert request.run_key not in [r.run_key for r in nxt.run_requests]


def test_two_deployments_on_one_table_never_share_a_claim(dtc):
    sensor = dtc_sensor(DAILY, job=window_job, max_claims_per_tick=3)
    with instance_for_test() as a, instance_for_test() as b:
        ra = tick(sensor, a, dtc)
        rb = tick(sensor, b, dtc)
        ra2 = tick(sensor, a, dtc, cursor=ra.cursor)  # reconcile: re-requests only its own claims
        windows_a = {r.tags[tags.BUCKET_TIME] for r in ra.run_requests + ra2.run_requests}
        windows_b = {r.tags[tags.BUCKET_TIME] for r in rb.run_requests}
        assert not windows_a & windows_b
        assert {r.tags[tags.OWNER] for r in ra.run_requests}.isdisjoint(
            {r.tags[tags.OWNER] for r in rb.run_requests}
        )


def test_partitioned_job_gets_the_window_as_partition_key(dtc, instance):
    sensor = dtc_sensor(PARTITIONED, job=daily_asset_job, max_claims_per_tick=2)
    defs = defs_for(dtc, sensor)
    context = build_sensor_context(instance=instance, resources={"dtc": dtc}, definitions=defs)
    result = sensor(context)
    assert len(result.run_requests) == 2
    job_def = defs.resolve_job_def("daily_asset_job")
    for request in result.run_requests:
        bucket = request.tags[tags.BUCKET_TIME]
        assert request.partition_key == bucket[:10]
        window = PARTITIONED.partitions_def.time_window_for_partition_key(request.partition_key)
        assert window.start.isoformat() == bucket
        run = execute(job_def, request, instance, dtc)
        assert run.success
        assert SEEN[run.run_id]["start"].isoformat() == bucket
    done = dtc.get_store().query(PARTITIONED.name, [Status.COMPLETE])
    assert len(done) == 2


def test_backfill_style_partition_run_claims_its_window(dtc, instance):
    job_def = defs_for(dtc).resolve_job_def("daily_asset_job")
    key = PARTITIONED.partition_key(PARTITIONED.start)
    result = job_def.execute_in_process(instance=instance, resources={"dtc": dtc}, partition_key=key)
    assert result.success
    assert dtc.get_store().get(PARTITIONED.name, PARTITIONED.start).status is Status.COMPLETE


def _bucket(request):
    from dagster_dtc import parse_time

    return parse_time(request.tags[tags.BUCKET_TIME])


def request_claim(request) -> int:
    return int(request.tags[tags.CLAIM])


def _history_message(dtc: DTCResource) -> str:
    with psycopg.connect(dtc.get_store().database_url) as conn:
        rows = conn.execute(f"SELECT message FROM {dtc.table} WHERE fail_count > 0").fetchall()
    return " ".join(r[0] or "" for r in rows)


def test_asset_selection_target_sends_partition_keys(dtc, instance):
    sensor = dtc_sensor(
        PARTITIONED, asset_selection=[daily_asset], max_claims_per_tick=2, name="assets_sensor"
    )
    context = build_sensor_context(
        instance=instance, resources={"dtc": dtc}, definitions=defs_for(dtc, sensor)
    )
    result = sensor(context)
    assert len(result.run_requests) == 2
    for request in result.run_requests:
        assert request.partition_key == request.tags[tags.BUCKET_TIME][:10]
        assert not request.run_config  # assets read the window from tags or the partition


def test_sensor_needs_exactly_one_target():
    with pytest.raises(ValueError, match="exactly one target"):
        dtc_sensor(DAILY)
    with pytest.raises(ValueError, match="exactly one target"):
        dtc_sensor(DAILY, job=window_job, asset_selection=[daily_asset])
