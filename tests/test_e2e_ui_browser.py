"""The Dagster UI of the example, in headless Chromium: DTC runs, windows and the calendar are visible.

Shares the ``dagster dev`` session of test_e2e_dagster_dev.py when both run. Screenshots go to
$DTC_SCREENSHOTS_DIR (scripts/ui-check sets ./screenshots) or to a pytest temporary folder; the paths
are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from dagster_dtc import Status, tags
from example_repo.definitions import call_mom, readings_report

from .e2e_support import (
    DagsterDev,
    chromium,
    dismiss_welcome,
    first_real_runs,
    page_text,
    shared_dagster_dev,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
    ),
]


@pytest.fixture(scope="module")
def dagster_dev(request: pytest.FixtureRequest) -> Iterator[DagsterDev]:
    yield from shared_dagster_dev(request)


@pytest.fixture(scope="module")
def ui(dagster_dev: DagsterDev) -> DagsterDev:
    first_real_runs(dagster_dev)
    dismiss_welcome(dagster_dev)
    return dagster_dev


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("DTC_SCREENSHOTS_DIR")
    folder = Path(configured).resolve() if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def look(dev: DagsterDev, path: str, screenshot: Path, expect: list[str]) -> str:
    """Open ``path`` until its text shows everything in ``expect`` (the UI loads data after the page)."""
    seen: dict[str, str] = {}

    def rendered() -> str | None:
        budget = 15000 if not seen else 30000
        seen["text"] = page_text(chromium(dev.base_url + path, budget_ms=budget))
        return seen["text"] if all(e in seen["text"] for e in expect) else None

    text = wait_for(
        rendered,
        240,
        f"{path} to show {expect}",
        every=2,
        explain=lambda: "--- page text ---\n" + seen.get("text", "")[:4000],
    )
    chromium(dev.base_url + path, screenshot=screenshot, budget_ms=20000)
    screenshot.with_suffix(".txt").write_text(text + "\n")
    print(f"screenshot of {dev.base_url}{path}: {screenshot}")
    return text


def test_runs_page_filtered_by_dtc_tag(ui: DagsterDev, shots: Path) -> None:
    runs = ui.runs(**{tags.NAME: readings_report.name})
    done = [r for r in runs if r["status"] == "SUCCESS"]
    assert done, runs
    newest = done[0]
    bucket = newest["tags"][tags.BUCKET_TIME]
    query = quote(f"tag:{tags.NAME}={readings_report.name}", safe="")
    text = look(
        ui,
        f"/runs?q[0]={query}",
        shots / "runs-readings_report.png",
        [newest["runId"][:8], bucket, "Success"],
    )
    assert f"{tags.NAME}={readings_report.name}" in text  # the filter chip
    assert "readings_report_job" in text
    assert "call_mom_job" not in text  # the tag filter applied
    for run in runs[:20]:
        assert run["runId"][:8] in text
    assert f"{tags.NAME}:\n{readings_report.name}" in text
    assert re.search(rf"{re.escape(tags.CLAIM)}:\n\d+", text)


def test_asset_page_shows_the_window_calendar(ui: DagsterDev, shots: Path) -> None:
    done = [
        t
        for t in ui.windows(call_mom.name, [Status.COMPLETE.value])
        if t.acquired_by.startswith("dagster-run:")
    ]
    assert done
    # The overview shows the latest materialization: that of the window completed last.
    newest = max(done, key=lambda t: t.completed_at)
    partition = call_mom.partition_key(newest.bucket_time)
    text = look(ui, "/assets/mom_called", shots / "asset-mom_called.png", ["dtc/calendar", partition])
    assert "Latest materialization" in text
    assert re.search(r"dtc/status\n(?:.*\n)?COMPLETE\n", text)  # key, (timestamp,) value
    calendar = text.split("dtc/calendar", 1)[1]
    assert call_mom.name in calendar and "P1D" in calendar
    assert re.search(r"\d+ windows: COMPLETE \d+", calendar), calendar[:500]
    assert f"{newest.bucket_time.day} ✅ COMPLETE" in calendar


def test_run_page_names_its_window(ui: DagsterDev, shots: Path) -> None:
    window = first_real_runs(ui)[-1]
    report = ui.report(window.bucket_time)
    run_id = report["run_id"]
    bucket = window.bucket_time.isoformat()
    text = look(ui, f"/runs/{run_id}", shots / "run-readings_report.png", [run_id[:8], "owns window"])
    assert f"owns window {readings_report.name} [{bucket}" in text
    assert "readings_report_job" in text
    assert "count_readings" in text
