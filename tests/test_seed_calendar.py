"""The seed calendar: one week of call_mom (P1D at 00:00Z) built by store operations and read back."""

from __future__ import annotations

from datetime import timedelta

from dagster_dtc import Status, TaskStore

from .core_support import utc

DAY = timedelta(days=1)
MONDAY = utc(2026, 11, 23)
TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = (MONDAY + i * DAY for i in range(1, 7))
NEXT_MONDAY = MONDAY + 7 * DAY

EXPECTED = {
    MONDAY: Status.COMPLETE,
    TUESDAY: Status.COMPLETE,
    WEDNESDAY: Status.SKIP,
    THURSDAY: Status.ACQUIRED,
    FRIDAY: Status.AVAILABLE,
    SATURDAY: Status.SKIP,
}


def test_seed_week(store: TaskStore) -> None:
    assert [d.strftime("%A") for d in (MONDAY, SUNDAY)] == ["Monday", "Sunday"]
    # Monday..Saturday exist; Sunday's window is never created
    assert store.create_windows("call_mom", "P1D", MONDAY, SUNDAY, worker="seed") == 6
    monday, tuesday, wednesday, thursday = store.claim("call_mom", limit=4, worker="phone-1")
    assert [c.bucket_time for c in (monday, tuesday, wednesday, thursday)] == [
        MONDAY,
        TUESDAY,
        WEDNESDAY,
        THURSDAY,
    ]
    monday.complete("talked about the garden")
    tuesday.complete("talked about the weather")
    wednesday.skip("mom at choir practice")
    assert store.skip("call_mom", SATURDAY, SUNDAY, reason="family visit") == 1
    # Thursday stays held by phone-1; Friday is untouched

    week = store.query("call_mom", bucket_start=MONDAY, bucket_end=NEXT_MONDAY)
    assert {t.bucket_time: t.status for t in week} == EXPECTED
    assert store.get("call_mom", SUNDAY) is None
    assert store.query("call_mom", bucket_start=SUNDAY, bucket_end=NEXT_MONDAY) == []

    by_day = {t.bucket_time: t for t in week}
    for day in (MONDAY, TUESDAY):
        t = by_day[day]
        assert t.acquired_by == "phone-1" and t.completed_at is not None and t.generation == 1
        assert t.window_start == day and t.window_end == day + DAY and t.bucket_interval == "P1D"
    assert by_day[MONDAY].message == "talked about the garden"
    assert by_day[WEDNESDAY].message == "mom at choir practice" and by_day[WEDNESDAY].completed_at is not None
    assert by_day[THURSDAY].acquired_by == "phone-1" and by_day[THURSDAY].lease_expires_at is not None
    assert by_day[THURSDAY].completed_at is None
    assert by_day[FRIDAY].acquired_by is None and by_day[FRIDAY].generation == 0
    assert by_day[SATURDAY].message == "family visit" and by_day[SATURDAY].acquired_by is None
    assert all(t.created_by == "seed" and t.fail_count == 0 for t in week)

    # the same picture through the status filters and the summary
    assert [t.bucket_time for t in store.query("call_mom", [Status.COMPLETE])] == [MONDAY, TUESDAY]
    assert [t.bucket_time for t in store.query("call_mom", [Status.SKIP])] == [WEDNESDAY, SATURDAY]
    assert [t.bucket_time for t in store.query("call_mom", [Status.ACQUIRED])] == [THURSDAY]
    assert [t.bucket_time for t in store.query("call_mom", [Status.AVAILABLE])] == [FRIDAY]
    [stats] = store.stats("call_mom")
    assert (stats["available"], stats["acquired"], stats["complete"], stats["skip"]) == (1, 1, 2, 2)
    assert stats["oldest_available"] == FRIDAY
    assert (
        store.explain_empty_claim("call_mom") == "1 windows of 'call_mom' are claimable (1 held by workers)"
    )

    # the next worker gets Friday, and only Friday
    [friday] = store.claim("call_mom", limit=7, worker="phone-2")
    assert friday.bucket_time == FRIDAY
    friday.fail("line busy")
    thursday.complete()
