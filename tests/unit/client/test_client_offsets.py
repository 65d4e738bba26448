"""The offset tracker: the confirmed offset never passes an unfinished update
(docs/contract.md#reliability)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tggate.client.offsets import OffsetTracker


def test_nothing_fetched_leaves_the_offset_to_telegram() -> None:
    assert OffsetTracker().offset is None
    assert OffsetTracker(start=7).offset == 7


def test_offset_waits_for_the_oldest_unfinished_update() -> None:
    tracker = OffsetTracker()
    for update_id in (10, 11, 12):
        tracker.add(update_id)
    tracker.finish(11)
    tracker.finish(12)
    assert tracker.offset == 10
    tracker.finish(10)
    assert tracker.offset == 13
    assert tracker.in_flight == 0


def test_repeated_updates_are_not_new() -> None:
    tracker = OffsetTracker()
    tracker.add(5)
    tracker.finish(5)
    assert not tracker.is_new(5)
    assert not tracker.is_new(4)
    assert tracker.is_new(6)
    with pytest.raises(ValueError, match="not newer"):
        tracker.add(5)


def test_start_offset_skips_what_was_confirmed_before() -> None:
    tracker = OffsetTracker(start=100)
    assert not tracker.is_new(99)
    assert tracker.is_new(100)


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60),
    data=st.data(),
)
def test_offset_never_passes_an_unfinished_update(gaps: list[int], data: st.DataObject) -> None:
    ids = []
    current = data.draw(st.integers(min_value=0, max_value=10**9))
    for gap in gaps:
        current += gap
        ids.append(current)
    tracker = OffsetTracker()
    fetched: list[int] = []
    unfinished: set[int] = set()
    remaining = list(ids)
    while remaining or unfinished:
        fetch = remaining and (not unfinished or data.draw(st.booleans()))
        if fetch:
            update_id = remaining.pop(0)
            tracker.add(update_id)
            fetched.append(update_id)
            unfinished.add(update_id)
        else:
            done = data.draw(st.sampled_from(sorted(unfinished)))
            tracker.finish(done)
            unfinished.discard(done)
        offset = tracker.offset
        assert offset is not None
        # Never past an unfinished update: Telegram would forget it.
        assert all(offset <= u for u in unfinished)
        # And as far as it can go: everything below it is fetched and finished.
        expected = min(unfinished) if unfinished else fetched[-1] + 1
        assert offset == expected
