"""DTCTask: one recurring job's window grid, shared by its sensor, its ops and its partitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dagster import TimeWindowPartitionsDefinition

from .intervals import Interval, require_aware
from .partitions import cron_for, partition_key_for, partitions_for
from .store import check_name


@dataclass(frozen=True)
class DTCTask:
    """The windows of one recurring job: its DTC ``name``, ``interval`` and grid ``origin``.

    Args:
        name: the task name stored in the table's ``name`` column.
        interval: ISO-8601 duration such as ``PT5M``, ``PT1H``, ``P1D``, ``P1W``, ``P1M``.
        origin: grid origin (default 1970-01-01T00:00:00Z); a daily job at 06:00Z uses 06:00Z.
        start: the first window; windows before it are never created by the sensor. Required for
            Dagster partitions.
        lag: whole intervals a window waits after it ends before it is due (0: due once it ends).
        backlog: how many due windows back the sensor makes sure exist on each tick.

    Example:
        .. code-block:: python

            from datetime import datetime, timezone
            from dagster_dtc import DTCTask

            call_mom = DTCTask("call_mom", "P1D", start=datetime(2026, 11, 1, tzinfo=timezone.utc))
            call_mom.partitions_def  # daily partitions whose keys are exactly the DTC windows
    """

    name: str
    interval: str
    origin: datetime | None = None
    start: datetime | None = None
    lag: int = 0
    backlog: int = 7
    grid: Interval = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name, "task name")
        object.__setattr__(self, "grid", Interval.parse(self.interval, self.origin))
        if self.start is not None:
            self.grid.check_bucket(self.start, "start")
        if self.lag < 0 or self.backlog < 1:
            raise ValueError(f"lag must be >= 0 and backlog >= 1, got lag={self.lag}, backlog={self.backlog}")

    def last_due(self, now: datetime) -> datetime:
        """Start of the newest window that is due at ``now``: it ended ``lag`` intervals ago or more."""
        return self.grid.shift(self.grid.floor(require_aware(now, "now")), -(1 + self.lag))

    def due_range(self, now: datetime) -> tuple[datetime, datetime] | None:
        """``[first, end)`` of the windows the sensor keeps created, or None when none is due yet."""
        last = self.last_due(now)
        first = self.grid.shift(last, -(self.backlog - 1))
        if self.start is not None:
            first = max(first, self.start)
        end = self.grid.next(last)
        return (first, end) if first < end else None

    @property
    def on_cron_grid(self) -> bool:
        return cron_for(self.grid) is not None

    @property
    def partitions_def(self) -> TimeWindowPartitionsDefinition:
        """Daily/hourly/... partitions matching the windows exactly; needs ``start``."""
        if self.start is None:
            raise ValueError(f"DTCTask {self.name!r} needs start=... to define partitions")
        return partitions_for(self.grid, self.start)

    def partition_key(self, bucket_time: datetime) -> str:
        return partition_key_for(self.grid, bucket_time)

    def bucket_for_partition(self, partition_key: str) -> datetime:
        return self.partitions_def.time_window_for_partition_key(partition_key).start.astimezone(
            self.grid.origin.tzinfo
        )
