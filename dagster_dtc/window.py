"""Inside a run: find the run's window, prove ownership, and finish it with the op's outcome."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

from dagster import AssetExecutionContext, Config, Failure, MetadataValue, OpExecutionContext, RetryRequested
from dagster._core.errors import DagsterInvariantViolationError
from pydantic import Field

from . import tags
from .claim import Claim
from .errors import (
    DTCError,
    StaleClaimError,
    WindowHeldError,
    WindowNotAvailableError,
    WindowNotFoundError,
)
from .intervals import parse_time
from .models import Status, Task
from .store import TaskStore
from .task import DTCTask

CALENDAR_WINDOWS = 28


class DTCWindowConfig(Config):
    """Run config naming the window an op processes. The sensor fills it in; set it by hand in the
    launchpad to run one window yourself. Subclass it to add your own op config fields.
    """

    dtc_bucket_time: str | None = Field(
        default=None, description="Start of the window, ISO-8601 with zone (2026-12-01T00:00:00Z)."
    )
    dtc_claim: int | None = Field(
        default=None, description="Claim token from the sensor. Leave empty when launching by hand."
    )
    dtc_rerun_complete: bool = Field(
        default=False, description="Run the window even if it is already COMPLETE or SKIP."
    )


def _refusal(message: str) -> Failure:
    # Not owning the window is not a flaky error: a RetryPolicy must not retry it.
    return Failure(description=message, allow_retries=False)


def _op_context(context: OpExecutionContext | AssetExecutionContext) -> OpExecutionContext:
    if isinstance(context, AssetExecutionContext):
        return context.op_execution_context
    return context


class DTCWindow:
    """The run's window, owned for the duration of a ``with`` block.

    On entry it works out which window the run is for (run config, then the sensor's run tags,
    then the partition key), and proves the run owns it: it adopts the sensor's claim by its token,
    or, for a run launched by hand (launchpad, backfill, re-execution), acquires the window itself —
    refusing with a clear :class:`dagster.Failure` if another run holds it, or if it is COMPLETE and
    ``dtc_rerun_complete`` is not set. While the block runs, the lease is renewed in the background.

    On a clean exit the window is COMPLETE (or SKIP after :meth:`skip`); on an exception it goes
    back to AVAILABLE with ``fail_count + 1`` — unless a ``RetryPolicy`` will retry the op, in which
    case the retry keeps the claim. The window, claim and a calendar of recent windows are added to
    the output's metadata. A window reopened or taken over meanwhile is never overwritten; the run
    says so in its log.

    Example:
        .. code-block:: python

            @op
            def report(context: OpExecutionContext, dtc: DTCResource, config: DTCWindowConfig):
                with dtc.window(context, hourly_report, config) as window:
                    rows = fetch(window.start, window.end)
                    if not rows:
                        window.skip("source had no rows")
                    window.add_metadata({"rows": len(rows)})
    """

    def __init__(
        self,
        store: TaskStore,
        context: OpExecutionContext | AssetExecutionContext,
        task: DTCTask,
        config: DTCWindowConfig | None = None,
    ) -> None:
        self.store = store
        self.context = _op_context(context)
        self.task = task
        self.config = config
        self.worker = f"dagster-run:{self.context.run_id}"
        self.claim: Claim | None = None
        self.source = ""
        self.result: Task | None = None
        self._skip_message: str | None = None
        self._message: str | None = None
        self._metadata: dict[str, Any] = {}

    # -- what the user code sees ---------------------------------------------------------------

    @property
    def start(self) -> datetime:
        """Inclusive start of the window (aware, UTC)."""
        return self._claim.window_start

    @property
    def end(self) -> datetime:
        """Exclusive end of the window (aware, UTC)."""
        return self._claim.window_end

    @property
    def bucket_time(self) -> datetime:
        return self._claim.bucket_time

    @property
    def _claim(self) -> Claim:
        if self.claim is None:
            raise RuntimeError("the window is only available inside `with dtc.window(...)`")
        return self.claim

    def skip(self, message: str) -> None:
        """Finish the window as SKIP (nothing to do for it) instead of COMPLETE."""
        self._skip_message = message

    def set_message(self, message: str) -> None:
        """The message stored with COMPLETE."""
        self._message = message

    def add_metadata(self, metadata: dict[str, Any]) -> None:
        """Extra metadata for the output/materialization, next to the window's own."""
        self._metadata.update(metadata)

    # -- resolving and owning the window -------------------------------------------------------

    def _resolve(self) -> tuple[datetime, int | None, str]:
        run_tags = self.context.run.tags
        if self.config is not None and self.config.dtc_bucket_time:
            bucket = parse_time(self.config.dtc_bucket_time, "dtc_bucket_time")
            return bucket, self.config.dtc_claim, "run config"
        if run_tags.get(tags.NAME) == self.task.name and run_tags.get(tags.BUCKET_TIME):
            claim = run_tags.get(tags.CLAIM)
            return parse_time(run_tags[tags.BUCKET_TIME]), int(claim) if claim else None, "run tags"
        if self.context.has_partition_key:
            return self.task.bucket_for_partition(self.context.partition_key), None, "partition key"
        raise _refusal(
            f"this run names no window of {self.task.name!r}: launch it from the DTC sensor, or set "
            "dtc_bucket_time in the op config (e.g. 2026-12-01T00:00:00Z), or run a partition"
        )

    def _own(self, bucket: datetime, token: int | None) -> Claim:
        name, log = self.task.name, self.context.log
        if token is not None:
            holders = [self.worker, *filter(None, [self.context.run.tags.get(tags.OWNER)])]
            try:
                return self.store.adopt(name, bucket, token, self.worker, holders)
            except StaleClaimError as exc:
                log.info(f"claim {token} is no longer current ({exc}); claiming the window for this run")
        current = self.store.get(name, bucket)
        if current is not None and current.status is Status.ACQUIRED and current.acquired_by == self.worker:
            # A retry of this op in this run: the earlier attempt's claim is still ours.
            return self.store.adopt(name, bucket, current.generation, self.worker, [self.worker])
        rerun = bool(self.config and self.config.dtc_rerun_complete)
        try:
            if current is None:
                self.store.create_window(name, bucket, self.task.grid, worker=self.worker)
            claim = self.store.acquire(name, bucket, self.worker, rerun_finished=rerun)
        except WindowHeldError as exc:
            raise _refusal(f"{exc}. This run left the window alone.") from None
        except WindowNotAvailableError as exc:
            raise _refusal(
                f"{exc}. To run it again, set dtc_rerun_complete: true in the op config."
            ) from None
        except WindowNotFoundError as exc:  # deleted between get and acquire
            raise _refusal(str(exc)) from None
        if current is not None and current.status in (Status.COMPLETE, Status.SKIP):
            log.warning(f"re-running window {bucket.isoformat()} that was {current.status.value} (asked to)")
        return claim

    def __enter__(self) -> DTCWindow:
        bucket, token, self.source = self._resolve()
        bucket = self.task.grid.check_bucket(bucket)
        if self.context.has_partition_key and self.task.on_cron_grid and self.task.start is not None:
            from_partition = self.task.bucket_for_partition(self.context.partition_key)
            if from_partition != bucket:
                raise _refusal(
                    f"window {bucket.isoformat()} (from {self.source}) does not match the "
                    f"run's partition {self.context.partition_key}"
                )
        self.claim = self._own(bucket, token)
        self.claim.start_keep_alive()
        self.context.log.info(
            f"owns window {self.task.name} [{self.claim.window_start.isoformat()}, "
            f"{self.claim.window_end.isoformat()}) as claim {self.claim.generation} (from {self.source})"
        )
        return self

    # -- finishing -----------------------------------------------------------------------------

    def _will_retry(self, exc: BaseException) -> bool:
        retry_number = self.context.retry_number
        if isinstance(exc, Failure) and not exc.allow_retries:
            return False
        if isinstance(exc, RetryRequested):
            return retry_number < exc.max_retries
        policy = self.context.get_step_execution_context().op_retry_policy
        return policy is not None and retry_number < policy.max_retries

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        claim = self._claim
        claim.stop_keep_alive()
        log = self.context.log
        if exc is not None and self._will_retry(exc):
            log.info(
                f"attempt failed ({exc}); the op will be retried and keeps window claim {claim.generation}"
            )
            return
        try:
            if exc is not None:
                self.result = claim.fail(f"run {self.context.run_id}: {type(exc).__name__}: {exc}"[:10_000])
            elif self._skip_message is not None:
                self.result = claim.skip(self._skip_message)
            else:
                self.result = claim.complete(self._message or f"completed by run {self.context.run_id}")
        except StaleClaimError as stale:
            log.warning(f"did not record this run's outcome: {stale}")
        except DTCError as err:
            if exc is None:
                raise Failure(description=f"could not record the window's outcome: {err}") from err
            log.error(f"could not record the failure: {err}")
        if self.result is not None and self.result.status is Status.AVAILABLE and exc is None:
            log.warning(
                "the window was reopened while this run held it; it is AVAILABLE again and will be "
                "processed by a new run"
            )
        if exc is None:
            self._record_metadata()

    def _record_metadata(self) -> None:
        claim = self._claim
        metadata: dict[str, Any] = {
            "dtc/name": self.task.name,
            "dtc/window_start": MetadataValue.timestamp(claim.window_start),
            "dtc/window_end": MetadataValue.timestamp(claim.window_end),
            "dtc/claim": claim.generation,
            "dtc/status": self.result.status.value if self.result else "unknown (claim lost)",
            "dtc/calendar": MetadataValue.md(self._calendar_markdown()),
            **self._metadata,
        }
        try:
            self.context.add_output_metadata(metadata)
        except DagsterInvariantViolationError:
            # Ops with several outputs need an output name; the run log still shows the window.
            self.context.log.info(f"window metadata: { {k: str(v) for k, v in metadata.items()} }")

    def _calendar_markdown(self) -> str:
        from .calendar import render_markdown

        end = self.task.grid.next(self._claim.bucket_time)
        start = self.task.grid.shift(self._claim.bucket_time, -(CALENDAR_WINDOWS - 1))
        try:
            recent = self.store.query(self.task.name, bucket_start=start, bucket_end=end)
        except DTCError as exc:
            return f"(calendar unavailable: {exc})"
        return render_markdown(recent)
