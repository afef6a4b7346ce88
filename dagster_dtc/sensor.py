"""dtc_sensor: claim due windows and launch one run per claim; reconcile claims whose runs went wrong."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.definitions.asset_selection import CoercibleToAssetSelection
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import RUN_KEY_TAG

from . import tags
from .claim import Claim
from .errors import DTCError, StaleClaimError
from .models import Task
from .resource import DTCResource
from .store import TaskStore
from .task import DTCTask

WINDOW_CONFIG_FIELD = "dtc_bucket_time"
_WAITING = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.MANAGED,
}
_RUNNING = {DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}
_RUNS_QUERY_KEYS = 1000  # run_keys per get_runs call in reconcile
_MAX_KEY_NOTES = 10  # run_keys named one by one in a tick's log line


def _deployment_id(context: SensorEvaluationContext) -> tuple[str, bool]:
    """A random id kept in the sensor's cursor: it tells this Dagster instance's claims from those of
    another deployment sensing the same table. Returns (id, newly_made)."""
    if context.cursor:
        try:
            value = json.loads(context.cursor).get("deployment")
            if isinstance(value, str) and value:
                return value, False
        except (ValueError, AttributeError):
            pass
    return uuid.uuid4().hex[:12], True


def _window_ops(job_def: JobDefinition) -> list[str]:
    """Top-level ops of the job whose config is a DTCWindowConfig (they get the window in run config)."""
    names = []
    for node in job_def.graph.nodes:
        field = getattr(node.definition, "config_field", None)
        fields = getattr(field.config_type, "fields", None) if field is not None else None
        if fields and WINDOW_CONFIG_FIELD in fields:
            names.append(node.name)
    return names


class _Tick:
    """One evaluation of a DTC sensor."""

    def __init__(
        self,
        context: SensorEvaluationContext,
        task: DTCTask,
        store: TaskStore,
        owner: str,
        job_def: JobDefinition | None,
        partitioned: bool,
        launch_lease: float,
    ) -> None:
        self.context = context
        self.task = task
        self.store = store
        self.owner = owner
        self.job_def = job_def
        self.partitioned = partitioned
        self.launch_lease = launch_lease
        self.window_ops = _window_ops(job_def) if job_def is not None else []
        self.notes: list[str] = []

    def run_request(self, task: Task) -> RunRequest:
        bucket_iso = task.bucket_time.isoformat()
        run_config: dict[str, Any] = {}
        if self.window_ops:
            window = {"dtc_bucket_time": bucket_iso, "dtc_claim": task.generation}
            run_config = {"ops": {op: {"config": window} for op in self.window_ops}}
        return RunRequest(
            run_key=tags.run_key(task.name, bucket_iso, task.generation),
            run_config=run_config,
            tags={
                tags.NAME: task.name,
                tags.BUCKET_TIME: bucket_iso,
                tags.INTERVAL: self.task.interval,
                tags.CLAIM: str(task.generation),
                tags.OWNER: self.owner,
            },
            partition_key=self.task.partition_key(task.bucket_time) if self.partitioned else None,
        )

    def _runs_by_key(self, held: Sequence[Task]) -> dict[str, Any]:
        keys = [tags.run_key(t.name, t.bucket_time.isoformat(), t.generation) for t in held]
        latest: dict[str, Any] = {}
        # In slices: a tag filter becomes one bind parameter per value, and SQLite run storage
        # refuses statements with more than 32,766 of them (held claims can pile up past that).
        for i in range(0, len(keys), _RUNS_QUERY_KEYS):
            runs = self.context.instance.get_runs(
                filters=RunsFilter(tags={tags.OWNER: self.owner, RUN_KEY_TAG: keys[i : i + _RUNS_QUERY_KEYS]})
            )
            for run in runs:  # newest first
                latest.setdefault(run.tags.get(RUN_KEY_TAG), run)
        return latest

    def _failure_message(self, run: Any) -> str:
        records = self.context.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
        detail = records[-1].message if records else ""
        return f"run {run.run_id} ended {run.status.value}" + (f": {detail}" if detail else "")

    def reconcile(self) -> list[RunRequest]:
        """Claims this sensor made whose runs are missing, waiting, or over without finishing them."""
        held = self.store.held_by(self.task.name, self.owner)
        if not held:
            return []
        runs = self._runs_by_key(held)
        renew: list[Task] = []  # leases to renew, all in one statement below
        missing: list[tuple[Task, str]] = []
        for task in held:
            key = tags.run_key(task.name, task.bucket_time.isoformat(), task.generation)
            run = runs.get(key)
            if run is None:
                # Claimed by a tick that died or timed out before Dagster made the run:
                # ask again under the same run_key (Dagster drops it if the run exists after all).
                renew.append(task)
                missing.append((task, key))
            elif run.status in _WAITING:
                renew.append(task)  # a queued run cannot renew the lease itself yet
            elif run.status in _RUNNING:
                # The run adopts the claim within moments of starting (the launch lease covers the
                # start-up) and renews it from then on; if its process dies, the lease lapses.
                continue
            else:
                claim = Claim(self.store, task, self.owner, self.store.lease_seconds)
                try:
                    if run.status == DagsterRunStatus.SUCCESS:
                        claim.fail(
                            f"run {run.run_id} succeeded without finishing the window (no DTC op ran?)"
                        )
                        self.notes.append(f"{key}: run succeeded without finishing; window failed")
                    else:
                        claim.fail(self._failure_message(run))
                        self.notes.append(f"{key}: run {run.status.value}; window back to AVAILABLE")
                except StaleClaimError:
                    continue  # the run or an operator moved the window on meanwhile
        renewed = self.store.renew_many(
            self.task.name,
            self.owner,
            [(t.bucket_time, t.generation) for t in renew],
            lease_seconds=self.launch_lease,
        )
        # A claim that was not renewed is stale: the run or an operator moved the window on meanwhile.
        again = [(t, key) for t, key in missing if (t.bucket_time, t.generation) in renewed]
        self.notes += [f"re-requested {key}" for _, key in again[:_MAX_KEY_NOTES]]
        if len(again) > _MAX_KEY_NOTES:
            self.notes.append(f"re-requested {len(again) - _MAX_KEY_NOTES} more")
        return [self.run_request(t) for t, _ in again]

    def ensure_windows(self) -> int:
        span = self.task.due_range(self.store.now())
        if span is None:
            return 0
        return self.store.create_windows(self.task.name, self.task.grid, span[0], span[1], worker=self.owner)

    def claim_new(self, limit: int, newest_first: bool) -> list[RunRequest]:
        claims = self.store.claim(
            self.task.name, limit, self.owner, newest_first=newest_first, lease_seconds=self.launch_lease
        )
        return [self.run_request(c.task) for c in claims]


def dtc_sensor(
    task: DTCTask,
    *,
    job: JobDefinition | UnresolvedAssetJobDefinition | None = None,
    job_name: str | None = None,
    asset_selection: CoercibleToAssetSelection | None = None,
    name: str | None = None,
    max_claims_per_tick: int = 10,
    minimum_interval_seconds: int = 30,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    resource_key: str = "dtc",
    newest_first: bool = False,
    launch_lease_seconds: float | None = None,
    description: str | None = None,
) -> SensorDefinition:
    """A sensor that launches one run per DTC window it has claimed.

    Each tick it (1) reconciles its earlier claims: a claim whose run was never created is
    requested again under the same run_key; one whose run is queued has its lease renewed; one whose
    run failed or was cancelled goes back to AVAILABLE with ``fail_count + 1`` and the run's error;
    (2) creates the windows that have come due (``task.lag``, ``task.backlog``); (3) claims up to
    ``max_claims_per_tick`` AVAILABLE windows and emits one RunRequest per claim, with a run_key
    unique to the claim, the window in the run config of every op whose config is a
    :class:`DTCWindowConfig`, ``dagster-dtc/*`` tags, and the partition key when the job is
    partitioned. A window it did not claim gets no request.

    Args:
        task: the window grid.
        job / job_name / asset_selection: what each run executes (exactly one of them).
        max_claims_per_tick: most windows claimed per tick.
        resource_key: key of the :class:`DTCResource` in the Definitions.
        newest_first: claim the most recent windows first (default: oldest first).
        launch_lease_seconds: lease of a claim between the tick that makes it and the moment its
            run adopts it (queueing and process start-up). The sensor renews it every tick while the
            run waits. Default: the larger of the resource's ``lease_seconds``, four tick intervals
            and 120 s. Once adopted, the run holds the window on the resource's (shorter) lease.

    Example:
        .. code-block:: python

            report = DTCTask("report", "PT5M", start=datetime(2026, 12, 1, tzinfo=timezone.utc))
            report_sensor = dtc_sensor(report, job=report_job, max_claims_per_tick=20)
    """
    if [job is not None or job_name is not None, asset_selection is not None].count(True) != 1:
        raise ValueError("dtc_sensor needs exactly one target: job=, job_name= or asset_selection=")
    if not 1 <= max_claims_per_tick <= 10_000:
        raise ValueError(f"max_claims_per_tick must be 1..10000, got {max_claims_per_tick}")
    target_job_name = job_name or (job.name if job is not None else None)
    sensor_name = name or f"dtc_{_slug(task.name)}_sensor"

    @sensor(
        name=sensor_name,
        job=job,
        job_name=None if job is not None else job_name,
        asset_selection=asset_selection,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={resource_key},
        description=description
        or f"Claims due {task.interval} windows of DTC task {task.name!r} and launches one run each.",
    )
    def _dtc_sensor(context: SensorEvaluationContext, **_resources: Any) -> SensorResult:
        # Direct invocation (tests) passes required resources as keywords; the daemon does not.
        # Either way the resource is read from the context.
        resource: DTCResource = getattr(context.resources, resource_key)
        deployment, fresh = _deployment_id(context)
        cursor = json.dumps({"deployment": deployment}) if fresh else None
        owner = f"dagster-sensor:{deployment}:{sensor_name}"
        job_def = _resolve_job(context, job, target_job_name)
        if job_def is not None:
            partitioned = job_def.partitions_def is not None
        else:
            # An asset selection: partitioned when the task defines partitions (its assets should
            # use task.partitions_def).
            partitioned = task.start is not None and task.on_cron_grid
        try:
            store = resource.get_store()
            launch_lease = launch_lease_seconds or max(
                resource.lease_seconds, 4.0 * minimum_interval_seconds, 120.0
            )
            tick = _Tick(context, task, store, owner, job_def, partitioned, launch_lease)
            requests = tick.reconcile()
            created = tick.ensure_windows()
            requests += tick.claim_new(max_claims_per_tick, newest_first)
        except DTCError as exc:
            return SensorResult(skip_reason=f"DTC table unavailable: {exc}", cursor=cursor)
        if created:
            tick.notes.append(f"created {created} windows")
        if not requests:
            reason = store.explain_empty_claim(task.name)
            return SensorResult(skip_reason="; ".join([reason, *tick.notes]), cursor=cursor)
        if tick.notes:
            context.log.info("; ".join(tick.notes))
        return SensorResult(run_requests=requests, cursor=cursor)

    return _dtc_sensor


def _resolve_job(
    context: SensorEvaluationContext,
    job: JobDefinition | UnresolvedAssetJobDefinition | None,
    job_name: str | None,
) -> JobDefinition | None:
    repo = context.repository_def
    if job_name is not None and repo is not None and repo.has_job(job_name):
        return repo.get_job(job_name)
    return job if isinstance(job, JobDefinition) else None


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text)
    return cleaned.strip("_").lower() or "task"
