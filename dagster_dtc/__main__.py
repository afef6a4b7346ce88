"""``python -m dagster_dtc``: the same as the ``dagster-dtc`` command."""

import sys

from .cli import main

sys.exit(main())
