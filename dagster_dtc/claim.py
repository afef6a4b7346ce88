"""A claim: one window held by one worker, proven by its token (the row's generation)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from .errors import DTCError, StaleClaimError
from .models import Status, Task, WindowBounds

if TYPE_CHECKING:
    from .store import TaskStore

log = logging.getLogger(__name__)


class Claim(WindowBounds):
    """A window held by this worker until it completes, fails or skips it, or its lease runs out.

    Every transition presents the claim's ``generation``; if the window was reopened, reclaimed
    after the lease expired, or finished from outside, the transition changes nothing and raises
    :class:`~dagster_dtc.StaleClaimError`.

    Used as a context manager, the claim renews its lease in a background thread (no transaction is
    held open), fails the window if the block raises, and completes it if the block ends without an
    explicit ``complete``/``skip``/``fail``::

        for claim in store.claim("call_mom", limit=1, worker="phone-1"):
            with claim:
                dial(claim.window_start, claim.window_end)
    """

    def __init__(self, store: TaskStore, task: Task, worker: str, lease_seconds: float) -> None:
        self.store = store
        self.task = task
        self.name = task.name
        self.bucket_time = task.bucket_time
        self.bucket_interval = task.bucket_interval
        self.generation = task.generation
        self.attempt = task.attempt
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.result: Task | None = None
        self.lost = False
        self.reopen_requested = False
        # Made with the keep-alive thread, which a claim finished straight away never starts.
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> int:
        return self.generation

    @property
    def finished(self) -> bool:
        return self.result is not None

    def complete(self, message: str | None = None) -> Task:
        """Mark the window COMPLETE (or AVAILABLE again if it was reopened while held)."""
        return self._finish(self.store._finish(self, Status.COMPLETE, message))

    def skip(self, message: str | None = None) -> Task:
        """Mark the window SKIP: nothing to do for it, and it is not retried."""
        return self._finish(self.store._finish(self, Status.SKIP, message))

    def fail(self, message: str | None = None) -> Task:
        """Put the window back to AVAILABLE with ``fail_count + 1``; it is retried after a backoff."""
        return self._finish(self.store._fail(self, message))

    def heartbeat(self) -> bool:
        """Renew the lease now. Returns True if someone asked for the window to be reopened."""
        self.reopen_requested = self.store._heartbeat(self)
        return self.reopen_requested

    def _finish(self, task: Task) -> Task:
        self.result = task
        self.stop_keep_alive()
        return task

    def start_keep_alive(self, every: float | None = None) -> None:
        """Renew the lease every ``every`` seconds (default: a third of the lease) until finished."""
        if self._thread is not None:
            return
        period = every if every is not None else max(self.lease_seconds / 3.0, 0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_alive, args=(period, self._stop), name=f"dtc-lease-{self.name}", daemon=True
        )
        self._thread.start()

    def stop_keep_alive(self) -> None:
        if self._stop is not None:
            self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _keep_alive(self, period: float, stop: threading.Event) -> None:
        while not stop.wait(period):
            try:
                self.heartbeat()
            except StaleClaimError as exc:
                self.lost = True
                log.warning("lost window %s %s: %s", self.name, self.bucket_time.isoformat(), exc)
                return
            except DTCError as exc:
                # The server may be restarting; the lease has slack for a missed renewal or two.
                log.warning(
                    "could not renew lease of %s %s: %s", self.name, self.bucket_time.isoformat(), exc
                )

    def __enter__(self) -> Claim:
        self.start_keep_alive()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_keep_alive()
        if self.finished:
            return
        if exc is None:
            self.complete()
            return
        try:
            self.fail(f"{type(exc).__name__}: {exc}")
        except DTCError as err:
            # The block's own exception is the one the caller needs to see; the window's state
            # now belongs to whoever took it over (or the lease will free it).
            log.warning("could not record failure of %s %s: %s", self.name, self.bucket_time.isoformat(), err)

    def __repr__(self) -> str:
        return (
            f"Claim(name={self.name!r}, bucket_time={self.bucket_time.isoformat()}, "
            f"interval={self.bucket_interval}, generation={self.generation}, worker={self.worker!r})"
        )
