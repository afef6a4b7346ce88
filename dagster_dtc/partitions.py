"""Map a DTC window grid onto Dagster's time-window partitions, when a cron schedule can express it."""

from __future__ import annotations

from datetime import datetime, timedelta

from dagster import TimeWindowPartitionsDefinition

from .errors import InvalidInputError
from .intervals import Interval

SUBDAILY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"


def cron_for(grid: Interval) -> str | None:
    """A cron schedule whose ticks are exactly the grid's bucket starts, or None if there is none.

    Covers minutes dividing an hour (PT5M, PT15M), hours dividing a day (PT1H, PT6H), P1D, P1W (on
    the origin's weekday), P1M (on the origin's day of month) and P1Y, at the origin's time of day.
    """
    o = grid.origin
    if o.second or o.microsecond:
        return None
    if grid.months:
        if grid.months == 1:
            return f"{o.minute} {o.hour} {o.day} * *"
        if grid.months == 12:
            return f"{o.minute} {o.hour} {o.day} {o.month} *"
        return None
    step = grid.fixed
    if (
        step < timedelta(hours=1)
        and timedelta(hours=1) % step == timedelta(0)
        and step % timedelta(minutes=1) == timedelta(0)
    ):
        n = step // timedelta(minutes=1)
        return f"{_field(o.minute % n, n, 60)} * * * *"
    if (
        step < timedelta(days=1)
        and timedelta(days=1) % step == timedelta(0)
        and step % timedelta(hours=1) == timedelta(0)
    ):
        n = step // timedelta(hours=1)
        return f"{o.minute} {_field(o.hour % n, n, 24)} * * *"
    if step == timedelta(days=1):
        return f"{o.minute} {o.hour} * * *"
    if step == timedelta(weeks=1):
        return f"{o.minute} {o.hour} * * {(o.weekday() + 1) % 7}"
    return None


def _field(offset: int, step: int, size: int) -> str:
    # Plain forms ("*", "*/15") where possible: Dagster has fast paths for common schedules.
    if step == 1:
        return "*"
    if offset == 0:
        return f"*/{step}"
    return ",".join(str(v) for v in range(offset, size, step))


def partitions_for(grid: Interval, start: datetime) -> TimeWindowPartitionsDefinition:
    """Time-window partitions whose keys are exactly the grid's windows (UTC), from ``start``."""
    cron = cron_for(grid)
    if cron is None:
        raise InvalidInputError(
            f"interval {grid.iso} with origin {grid.origin.isoformat()} is not on a cron grid, so Dagster "
            "time-window partitions cannot match its windows; run it unpartitioned (the window comes "
            "from run config and tags)"
        )
    fmt = DAILY_FMT if grid.months or grid.fixed >= timedelta(days=1) else SUBDAILY_FMT
    return TimeWindowPartitionsDefinition(
        cron_schedule=cron, start=grid.check_bucket(start, "start"), timezone="UTC", fmt=fmt
    )


def partition_key_for(grid: Interval, bucket_time: datetime) -> str:
    fmt = DAILY_FMT if grid.months or grid.fixed >= timedelta(days=1) else SUBDAILY_FMT
    return grid.check_bucket(bucket_time).strftime(fmt)
