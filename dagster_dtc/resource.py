"""DTCResource: the DTC table as a Dagster resource."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field

from .store import TaskStore

if TYPE_CHECKING:
    from dagster import AssetExecutionContext, OpExecutionContext

    from .task import DTCTask
    from .window import DTCWindow, DTCWindowConfig

_stores: dict[tuple[Any, ...], TaskStore] = {}
_stores_lock = threading.Lock()


class DTCResource(ConfigurableResource):
    """The DTC window table, for sensors that claim windows and ops/assets that process them.

    With no ``database_url`` (and no ``DTC_DATABASE_URL`` in the environment) it uses the embedded
    PostgreSQL server in ``~/.local/share/dagster-dtc`` (``$DTC_HOME``), which suits ``dagster dev``.

    Example:
        .. code-block:: python

            from dagster import Definitions, EnvVar, asset
            from dagster_dtc import DTCResource, DTCTask, dtc_sensor

            call_mom = DTCTask("call_mom", "P1D")

            @asset
            def calls(context, dtc: DTCResource):
                with dtc.window(context, call_mom) as window:
                    context.log.info(f"calling for {window.start} .. {window.end}")

            defs = Definitions(
                assets=[calls],
                sensors=[dtc_sensor(call_mom, job_name="calls_job")],
                resources={"dtc": DTCResource(database_url=EnvVar("DTC_DATABASE_URL"))},
            )
    """

    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:5432/db. Empty: $DTC_DATABASE_URL, else embedded.",
    )
    table: str = Field(default="dtc_tasks", description="DTC table, optionally schema-qualified.")
    lease_seconds: float = Field(
        default=60.0,
        description="How long a claim lives without renewal. A killed run's window is freed after this.",
    )
    max_attempts: int | None = Field(
        default=10, description="Claims per window before it waits for a reopen (null: unlimited)."
    )
    backoff_base_seconds: float = Field(default=30.0, description="Backoff after the first failed attempt.")
    backoff_max_seconds: float = Field(default=3600.0, description="Longest backoff between attempts.")

    def get_store(self) -> TaskStore:
        """The TaskStore for this configuration, with its schema created on first use.

        Stores are shared per process so a sensor tick or a run opens one small connection pool.
        """
        key = (
            self.database_url or None,
            self.table,
            self.lease_seconds,
            self.max_attempts,
            self.backoff_base_seconds,
            self.backoff_max_seconds,
        )
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                store = TaskStore(
                    self.database_url or None,
                    self.table,
                    lease_seconds=self.lease_seconds,
                    max_attempts=self.max_attempts,
                    backoff_base=self.backoff_base_seconds,
                    backoff_max=self.backoff_max_seconds,
                )
                store.init_schema()
                _stores[key] = store
            return store

    def window(
        self,
        context: OpExecutionContext | AssetExecutionContext,
        task: DTCTask,
        config: DTCWindowConfig | None = None,
    ) -> DTCWindow:
        """The window this run processes, as a context manager that owns it for the block.

        See :class:`~dagster_dtc.DTCWindow`.
        """
        from .window import DTCWindow

        return DTCWindow(self.get_store(), context, task, config)
