"""The core store is framework-free: importing it and using the store does not import Dagster."""

from __future__ import annotations

import subprocess
import sys


def test_core_store_does_not_import_dagster() -> None:
    code = (
        "import sys\n"
        "import dagster_dtc\n"
        "from dagster_dtc import TaskStore, Claim, Interval, Status, StaleClaimError\n"
        "assert 'dagster' not in sys.modules, [m for m in sys.modules if m.startswith('dagster.')][:5]\n"
        "from dagster_dtc import DTCResource\n"  # the Dagster layer still loads on first use
        "assert 'dagster' in sys.modules\n"
        "assert dagster_dtc.DTCResource is DTCResource\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
