"""dagster-dtc: a distributed task calendar on PostgreSQL, for Dagster and plain Python workers.

Every time window of a recurring job is claimed by one worker, processed, and marked COMPLETE,
SKIP or (on failure) AVAILABLE again; any other system can reopen a window with plain SQL.

.. code-block:: python

    from datetime import datetime, timezone
    from dagster_dtc import TaskStore

    store = TaskStore()          # $DTC_DATABASE_URL, else an embedded PostgreSQL
    store.init_schema()
    store.create_windows("call_mom", "P1D",
                         datetime(2026, 12, 1, tzinfo=timezone.utc),
                         datetime(2026, 12, 8, tzinfo=timezone.utc))
    for claim in store.claim("call_mom", limit=2):
        with claim:
            print(claim.window_start, claim.window_end)
"""

import importlib
from typing import TYPE_CHECKING, Any

from .claim import Claim
from .errors import (
    DatabaseUnavailableError,
    DTCError,
    IntervalMismatchError,
    InvalidDatabaseURLError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidIntervalError,
    InvalidTimeError,
    SchemaMissingError,
    StaleClaimError,
    WindowHeldError,
    WindowNotAvailableError,
    WindowNotFoundError,
)
from .intervals import Interval, parse_time
from .models import Status, Task
from .store import TaskStore

if TYPE_CHECKING:
    from .resource import DTCResource
    from .sensor import dtc_sensor
    from .task import DTCTask
    from .window import DTCWindow, DTCWindowConfig

# The Dagster layer is imported on first use: plain Python workers, and every process they spawn,
# use the core store without paying for (or needing) a Dagster import.
_LAZY = {
    "DTCResource": ".resource",
    "dtc_sensor": ".sensor",
    "DTCTask": ".task",
    "DTCWindow": ".window",
    "DTCWindowConfig": ".window",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Claim",
    "DTCError",
    "DTCResource",
    "DTCTask",
    "DTCWindow",
    "DTCWindowConfig",
    "DatabaseUnavailableError",
    "Interval",
    "IntervalMismatchError",
    "InvalidDatabaseURLError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidIntervalError",
    "InvalidTimeError",
    "SchemaMissingError",
    "StaleClaimError",
    "Status",
    "Task",
    "TaskStore",
    "WindowHeldError",
    "WindowNotAvailableError",
    "WindowNotFoundError",
    "dtc_sensor",
    "parse_time",
]
__version__ = "0.1.0"
