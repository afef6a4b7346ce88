"""End to end: the example under a real ``dagster dev`` (daemon, sensors, run workers, webserver).

Short leases (6 s) and backoff (1 s) keep it quick; every ``count_readings`` takes 8 s
(EXAMPLE_SOURCE_LATENCY_SECONDS) so a run can be caught in the middle of its window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import psutil
import pytest

from dagster_dtc import Status, Task, tags
from example_repo.definitions import call_mom, readings_report
from example_repo.source import SourceDatabase

from .e2e_support import (
    SEED_MESSAGE,
    DagsterDev,
    first_real_runs,
    run_by_id,
    shared_dagster_dev,
    wait_for,
    wait_for_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

NAME = readings_report.name
RUN_KEY = "dagster/run_key"
REOPEN_SQL = "UPDATE dtc_tasks SET status = 'AVAILABLE' WHERE name = %s AND bucket_time = %s"


@pytest.fixture(scope="module")
def dagster_dev(request: pytest.FixtureRequest) -> Iterator[DagsterDev]:
    yield from shared_dagster_dev(request)


def _dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie its parent has not reaped yet."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def check_sensor_run(run: dict, name: str, bucket: datetime) -> None:
    """A run the DTC sensor launched for one claim of one window."""
    claim = int(run["tags"][tags.CLAIM])
    assert run["tags"][tags.NAME] == name
    assert run["tags"][tags.BUCKET_TIME] == bucket.isoformat()
    assert run["tags"][RUN_KEY] == tags.run_key(name, bucket.isoformat(), claim)
    assert run["tags"][tags.OWNER].startswith("dagster-sensor:")


def test_sensors_run_real_windows(dagster_dev: DagsterDev) -> None:
    dev = dagster_dev
    completed = first_real_runs(dev)
    for window in completed:
        report = dev.report(window.bucket_time)
        assert report is not None
        assert report["revision"] == 1
        assert report["total"] > 0
        assert sum(report["by_site"].values()) == report["total"]
        assert window.acquired_by == f"dagster-run:{report['run_id']}"
        assert window.message == f"{report['total']} readings; report revision 1"
        run = wait_for_run(dev, NAME, window.bucket_time, report["run_id"], "SUCCESS")
        check_sensor_run(run, NAME, window.bucket_time)
        assert int(run["tags"][tags.CLAIM]) <= window.generation
    # The daily asset's windows ran as partitions of call_mom_job.
    moms = [t for t in dev.windows(call_mom.name) if SEED_MESSAGE not in (t.message or "")]
    assert moms, dev.explain()
    runs = dev.runs(**{tags.NAME: call_mom.name})
    assert runs and all(r["tags"].get("dagster/partition") for r in runs), runs


def test_no_window_fails_when_nothing_went_wrong(dagster_dev: DagsterDev) -> None:
    """Before the tests below break anything, no real window has failed and no run has failed."""
    dev = dagster_dev
    first_real_runs(dev)
    ran = [
        t
        for name in (NAME, call_mom.name)
        for t in dev.windows(name)
        if t.generation > 0 and SEED_MESSAGE not in (t.message or "")
    ]
    assert [(t.name, t.bucket_time.isoformat(), t.message) for t in ran if t.fail_count] == []
    failed = [r for r in dev.runs() if r["status"] == "FAILURE"]
    assert failed == []


def test_reopened_window_runs_again_under_a_new_run_key(dagster_dev: DagsterDev) -> None:
    dev = dagster_dev
    window = first_real_runs(dev)[-1]
    bucket = window.bucket_time
    before = dev.report(bucket)
    assert before is not None and before["revision"] == 1
    first_run = wait_for_run(dev, NAME, bucket, before["run_id"], "SUCCESS")
    old_keys = {r["tags"][RUN_KEY] for r in dev.window_runs(NAME, bucket)}

    # Late data arrives; some other service reopens the window with plain SQL.
    added = SourceDatabase(url=dev.url).add_late_readings(bucket, readings_report.grid.end(bucket))
    assert added > 0
    assert dev.execute(REOPEN_SQL, NAME, bucket) == 1
    reopened = dev.window(NAME, bucket)
    assert reopened.status is Status.AVAILABLE

    def redone() -> Task | None:
        task = dev.window(NAME, bucket)
        report = dev.report(bucket)
        if (
            task.status is Status.COMPLETE
            and task.generation > reopened.generation
            and report["revision"] > 1
        ):
            return task
        return None

    final = wait_for(
        redone, 180, f"reopened window {bucket.isoformat()} to complete again", explain=dev.explain
    )
    after = dev.report(bucket)
    assert after["revision"] == 2
    assert after["total"] == before["total"] + added
    assert after["run_id"] != before["run_id"]
    assert final.acquired_by == f"dagster-run:{after['run_id']}"
    assert final.message == f"{after['total']} readings; report revision 2"

    rerun = wait_for_run(dev, NAME, bucket, after["run_id"], "SUCCESS")
    check_sensor_run(rerun, NAME, bucket)
    assert rerun["tags"][RUN_KEY] not in old_keys
    assert int(rerun["tags"][tags.CLAIM]) > int(first_run["tags"][tags.CLAIM])
    # The first run is still there, untouched, under its own run_key.
    first_again = run_by_id(dev.window_runs(NAME, bucket), first_run["runId"])
    assert first_again is not None and first_again["status"] == "SUCCESS"
    assert first_again["tags"][RUN_KEY] in old_keys


def test_killed_run_gives_its_window_back(dagster_dev: DagsterDev) -> None:
    dev = dagster_dev
    first_real_runs(dev)
    # A window no run has touched yet (seeded COMPLETE), reopened so that a fresh run picks it up.
    bucket = next(
        t.bucket_time
        for t in reversed(dev.windows(NAME, [Status.COMPLETE.value]))
        if t.message == SEED_MESSAGE
    )
    assert dev.execute(REOPEN_SQL, NAME, bucket) == 1

    def held_by_a_run() -> Task | None:
        task = dev.window(NAME, bucket)
        running = task.status is Status.ACQUIRED and (task.acquired_by or "").startswith("dagster-run:")
        return task if running else None

    held = wait_for(held_by_a_run, 180, "a run to own the reopened window", every=0.25, explain=dev.explain)
    run_id = held.acquired_by.removeprefix("dagster-run:")
    worker = wait_for(lambda: dev.run_process(run_id), 30, f"the pid of run {run_id}", every=0.25)
    # The run worker and its step subprocess (multiprocess executor): the step holds the lease, and
    # it outlives a killed run worker (it would finish the window itself), so all of them go.
    processes = [worker, *worker.children(recursive=True)]
    assert dev.window(NAME, bucket).acquired_by == held.acquired_by, "the run finished before the kill"
    for proc in reversed(processes):
        proc.kill()
    _gone, alive = psutil.wait_procs(processes, timeout=15)
    assert all(_dead(p) for p in alive), alive

    # Nobody renews the lease now: the sensor's next claim reaps the window.
    def given_back() -> Task | None:
        task = dev.window(NAME, bucket)
        reaped = task.fail_count > held.fail_count and f"lease expired: {held.acquired_by}" in (
            task.message or ""
        )
        return task if reaped else None

    back = wait_for(given_back, 90, "the killed run's window to come back", every=0.5, explain=dev.explain)
    assert back.status is Status.AVAILABLE or back.acquired_by != held.acquired_by  # freed or re-claimed
    assert f"stopped renewing claim {held.generation}" in back.message

    def completed() -> Task | None:
        task = dev.window(NAME, bucket)
        return task if task.status is Status.COMPLETE and task.generation > held.generation else None

    final = wait_for(completed, 180, "the window to complete under a later claim", explain=dev.explain)
    report = dev.report(bucket)
    assert report is not None and report["revision"] == 1  # the killed run never published
    assert report["run_id"] != run_id
    assert final.acquired_by == f"dagster-run:{report['run_id']}"
    assert final.fail_count >= held.fail_count + 1

    # Dagster's side: the code server saw the worker die and failed the run; a later run succeeded.
    killed = wait_for_run(dev, NAME, bucket, run_id, "FAILURE")
    later = wait_for_run(dev, NAME, bucket, report["run_id"], "SUCCESS")
    check_sensor_run(later, NAME, bucket)
    assert later["tags"][RUN_KEY] != killed["tags"][RUN_KEY]
    assert int(later["tags"][tags.CLAIM]) > int(killed["tags"][tags.CLAIM])
