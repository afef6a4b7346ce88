"""Run tags dagster-dtc puts on every run it launches (filter the Runs page by them)."""

PREFIX = "dagster-dtc/"
NAME = PREFIX + "name"
BUCKET_TIME = PREFIX + "bucket_time"
INTERVAL = PREFIX + "interval"
CLAIM = PREFIX + "claim"
OWNER = PREFIX + "owner"


def run_key(name: str, bucket_iso: str, generation: int) -> str:
    """Unique per claim: Dagster never launches one run_key twice, so a re-run needs a new claim."""
    return f"dtc:{name}:{bucket_iso}:claim-{generation}"
