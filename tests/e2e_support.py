"""A real ``dagster dev`` on the example code location, for the end-to-end and browser tests.

One session is shared by the test modules that use it: it is started by the first test that needs
it and stopped as soon as no test left in the pytest session needs it. A session owns a throwaway
PostgreSQL server (tests/pg.py), a fresh DAGSTER_HOME and the ``dagster dev`` process group; only
those are ever signalled or deleted.

Before ``dagster dev`` starts, the due windows are created and all but the newest few marked
COMPLETE ("seeded"), so the sensors have a handful of real windows to run rather than a backlog that
would take minutes on a small machine.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg
import pytest
from psycopg.rows import dict_row

from dagster_dtc import Status, Task, TaskStore
from dagster_dtc.embedded import embedded_database_url
from dagster_dtc.tags import BUCKET_TIME, NAME
from example_repo.definitions import call_mom, readings_report

from .pg import EmbeddedServer

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FIXTURE = "dagster_dev"

LEASE_SECONDS = 6
SOURCE_LATENCY_SECONDS = 8  # each count_readings sleeps this long: time to catch a run mid-window
KEEP_AVAILABLE = {readings_report.name: 2, call_mom.name: 2}  # newest windows left for the sensors
SEED_WORKER = "e2e-seed"
SEED_MESSAGE = "seeded COMPLETE by the e2e test (never ran)"

ENV = {
    "DTC_LEASE_SECONDS": str(LEASE_SECONDS),
    "DTC_BACKOFF_SECONDS": "1",
    "EXAMPLE_SOURCE_FAILURE_RATE": "0",
    "EXAMPLE_SOURCE_LATENCY_SECONDS": str(SOURCE_LATENCY_SECONDS),
}

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

LOGS_QUERY = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
    ... on PythonError { message }
  }
}
"""

RUN_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int, since: float) -> set[psutil.Process]:
    """Live processes in process group ``pgid`` created after ``since`` (so never a reused id's)."""
    members = set()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.create_time() >= since - 1:
                members.add(proc)
    return members


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 1.0, explain=None) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` (and ``explain()``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(every)


class DagsterDev:
    """``dagster dev -w workspace.yaml`` on a free port, with its own PostgreSQL and DAGSTER_HOME."""

    def __init__(self) -> None:
        self.created = time.time()
        self.workdir = Path(tempfile.mkdtemp(prefix="dtc-e2e-"))
        self.dagster_home = self.workdir / "dagster_home"
        self.log_path = self.workdir / "dagster-dev.log"
        self.port = free_port()
        self.server: EmbeddedServer | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.store: TaskStore | None = None
        self._tree: set[psutil.Process] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DagsterDev:
        # dagster dev runs on dagster-dtc's embedded default (no DTC_DATABASE_URL), in a DTC_HOME of
        # its own: the set-up a newcomer gets. The test joins the same server to seed and inspect it.
        dtc_home = self.workdir / "dtc_home"
        url = embedded_database_url(dtc_home)
        self.server = EmbeddedServer.attach(dtc_home / "pgdata", url)
        self.store = TaskStore(self.url, lease_seconds=LEASE_SECONDS)
        self.store.init_schema()
        self.seed()
        self.dagster_home.mkdir()
        shutil.copy(REPO / "example_repo" / "dagster.yaml", self.dagster_home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DTC_", "DAGSTER_", "EXAMPLE_"))}
        env.update(ENV)
        env.update(
            DTC_HOME=str(dtc_home),
            DAGSTER_HOME=str(self.dagster_home),
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "dagster"),
                    "dev",
                    "-w",
                    "workspace.yaml",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(self.webserver_up, 180, "the Dagster webserver to answer", explain=self.log_tail)
        return self

    def webserver_up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"dagster dev exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/server_info", timeout=5) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def seed(self) -> None:
        """Create the due windows and mark all but the newest ``KEEP_AVAILABLE`` COMPLETE."""
        store = self.store
        assert store is not None
        now = store.now()
        for task in (readings_report, call_mom):
            span = task.due_range(now)
            assert span is not None, f"no {task.name} window is due at {now}"
            store.create_windows(task.name, task.grid, span[0], span[1], worker=SEED_WORKER)
            windows = store.query(task.name)
            done = len(windows) - KEEP_AVAILABLE[task.name]
            if done > 0:
                for claim in store.claim(task.name, done, SEED_WORKER):
                    if task is call_mom and claim.window_start.weekday() == 5:
                        claim.skip(f"Saturday: mom is out ({SEED_MESSAGE})")  # as mom_called would
                    else:
                        claim.complete(SEED_MESSAGE)

    def descendants(self) -> set[psutil.Process]:
        """Every live process started under ``dagster dev`` (remembered, so teardown finds orphans)."""
        if self.proc is None:
            return set()
        try:
            root = psutil.Process(self.proc.pid)
            self._tree |= {root, *root.children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
        return {p for p in self._tree if p.is_running()}

    def stop(self) -> None:
        """Stop ``dagster dev`` (SIGTERM to its process group, then SIGKILL what is left of it)."""
        try:
            if self.proc is not None:
                tree = self.descendants()
                pgid = self.proc.pid  # start_new_session: the group is ours alone
                if self.proc.poll() is None:
                    os.killpg(pgid, signal.SIGTERM)  # dagster dev stops its children (takes ~10 s)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=30)
                # What is left of the group, and anything of ours that left it (none expected).
                leftovers = tree | group_members(pgid, self.created)
                for proc in leftovers:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        proc.kill()
                psutil.wait_procs(list(leftovers), timeout=10)
                self.proc.wait(timeout=10)
        finally:
            if self.store is not None:
                self.store.close()
            if self.server is not None:
                self.server.destroy()
                self.server = None
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no dagster dev log)"
        return "--- dagster dev log (tail) ---\n" + "\n".join(text[-lines:])

    # -- the DTC table and the example's outbox --------------------------------------------------

    def window(self, name: str, bucket: datetime) -> Task:
        assert self.store is not None
        task = self.store.get(name, bucket)
        assert task is not None, f"no window {name} {bucket.isoformat()}"
        return task

    def windows(self, name: str, statuses: list[str] | None = None) -> list[Task]:
        assert self.store is not None
        return self.store.query(name, statuses)

    def execute(self, sql: str, *params: Any) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).rowcount

    def report(self, bucket: datetime, task: str = readings_report.name) -> dict[str, Any] | None:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            try:
                return conn.execute(
                    "SELECT * FROM example.reports WHERE task = %s AND window_start = %s", (task, bucket)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None

    def reports(self, task: str = readings_report.name) -> list[dict[str, Any]]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            try:
                return conn.execute(
                    "SELECT * FROM example.reports WHERE task = %s ORDER BY window_start", (task,)
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def table_dump(self, name: str = readings_report.name) -> str:
        rows = [
            f"  {t.bucket_time.isoformat()} {t.status.value:9} gen={t.generation} fails={t.fail_count} "
            f"by={t.acquired_by} msg={(t.message or '')[:90]!r}"
            for t in self.windows(name)
        ]
        return f"--- dtc_tasks {name} ---\n" + "\n".join(rows)

    def explain(self) -> str:
        return "\n".join(
            [self.table_dump(readings_report.name), self.table_dump(call_mom.name), self.log_tail()]
        )

    # -- Dagster, through the webserver's GraphQL API --------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            payload = json.loads(resp.read())
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def runs(self, **tag_filter: str) -> list[dict[str, Any]]:
        """Runs (newest first) carrying all the given tags; each with ``tags`` as a dict."""
        tags = [{"key": k, "value": v} for k, v in tag_filter.items()]
        data = self.graphql(RUNS_QUERY, {"filter": {"tags": tags}})["runsOrError"]
        assert data["__typename"] == "Runs", data
        return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in data["results"]]

    def window_runs(self, name: str, bucket: datetime) -> list[dict[str, Any]]:
        return self.runs(**{NAME: name, BUCKET_TIME: bucket.isoformat()})

    def run_messages(self, run_id: str) -> list[str]:
        data = self.graphql(LOGS_QUERY, {"runId": run_id})["logsForRun"]
        assert data["__typename"] == "EventConnection", data
        return [e.get("message") or "" for e in data["events"]]

    def run_process(self, run_id: str) -> psutil.Process | None:
        """The run's worker process (from its 'Started process for run (pid: N)' event), if it is ours."""
        for message in self.run_messages(run_id):
            match = RUN_PID.search(message)
            if match:
                pid = int(match.group(1))
                mine = {p.pid: p for p in self.descendants()}
                if pid not in mine:
                    raise AssertionError(f"run {run_id}'s pid {pid} is not under our dagster dev")
                return mine[pid]
        return None


# -- the shared session --------------------------------------------------------------------------

_session: DagsterDev | None = None


def _stop_session() -> None:
    global _session
    if _session is not None:
        session, _session = _session, None
        session.stop()


atexit.register(_stop_session)  # an interrupted pytest still leaves nothing running


def _needed_later(request: pytest.FixtureRequest) -> bool:
    """Whether a test after this module, in this pytest session, uses the shared dagster dev."""
    items = request.session.items
    module = request.node.path
    last = max((i for i, item in enumerate(items) if item.path == module), default=len(items))
    return any(FIXTURE in item.fixturenames for item in items[last + 1 :])


def shared_dagster_dev(request: pytest.FixtureRequest) -> Iterator[DagsterDev]:
    """Body of each module's ``dagster_dev`` fixture (scope="module")."""
    global _session
    if _session is None:
        session = DagsterDev()
        try:
            session.start()
        except BaseException:
            session.stop()
            raise
        _session = session
    try:
        yield _session
    finally:
        if not _needed_later(request):
            _stop_session()


def run_by_id(runs: list[dict[str, Any]], run_id: str) -> dict[str, Any] | None:
    return next((r for r in runs if r["runId"] == run_id), None)


def wait_for_run(
    dev: DagsterDev, name: str, bucket: datetime, run_id: str, status: str, timeout: float = 90
) -> dict[str, Any]:
    """The run of window ``name``/``bucket`` with ``run_id``, once Dagster says it is ``status``."""

    def check() -> dict[str, Any] | None:
        run = run_by_id(dev.window_runs(name, bucket), run_id)
        return run if run is not None and run["status"] == status else None

    return wait_for(check, timeout, f"run {run_id} to be {status}", explain=dev.explain)


def first_real_runs(dev: DagsterDev, timeout: float = 200) -> list[Task]:
    """Wait until the sensors' runs have completed real readings_report and call_mom windows."""

    def done() -> list[Task] | None:
        reports = {r["window_start"] for r in dev.reports()}
        readings = [
            t
            for t in dev.windows(readings_report.name, [Status.COMPLETE.value])
            if t.message != SEED_MESSAGE and t.bucket_time in reports
        ]
        moms = [
            t
            for t in dev.windows(call_mom.name, [Status.COMPLETE.value, Status.SKIP.value])
            if SEED_MESSAGE not in (t.message or "")
        ]
        return readings if readings and moms else None

    completed = wait_for(done, timeout, "the sensors' first runs to complete windows", explain=dev.explain)
    # A window is COMPLETE a moment before Dagster records its run's success.
    newest = completed[-1]
    report = dev.report(newest.bucket_time)
    assert report is not None
    wait_for_run(dev, readings_report.name, newest.bucket_time, report["run_id"], "SUCCESS")
    return completed


# -- the browser ----------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1400,1000",
]


def chromium(
    url: str, *, screenshot: Path | None = None, budget_ms: int = 15000, timeout: float = 120
) -> str:
    """Open ``url`` in headless Chromium; return the DOM after ``budget_ms`` of virtual time.

    With ``screenshot``, a PNG of the page is saved there too (a second browser start).
    """
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed"
    profile = Path(tempfile.mkdtemp(prefix="dtc-chromium-"))
    try:
        base = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        dom = _browser([*base, "--dump-dom", url], timeout).stdout.decode(errors="replace")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            _browser([*base, f"--screenshot={screenshot}", url], timeout)
            assert screenshot.exists() and screenshot.stat().st_size > 0, f"no screenshot of {url}"
        return dom
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _browser(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    since = time.time()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet: the group is surely ours
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {timeout:.0f} s: {cmd[-1]}") from None
    finally:
        for helper in group_members(proc.pid, since):  # a zygote or GPU helper left behind
            with contextlib.suppress(psutil.Error):
                helper.kill()
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited with {proc.returncode} on {cmd[-1]}: {err.decode()[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def page_text(dom: str) -> str:
    """The visible text of a DOM dump, one element's text per line."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", "\n", text)
    text = text.replace("&nbsp;", " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def dismiss_welcome(dev: DagsterDev) -> None:
    """Mark the 'Join the Dagster community' dialog seen, as its Skip button does, so it hides nothing."""
    assert dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
