"""Example Dagster code location for dagster-dtc (loaded by workspace.yaml)."""
