"""The delivery journal: what survives a restart, what is forgotten, and crash-cut lines."""

from __future__ import annotations

from pathlib import Path

from tests.support.clock import FakeClock

from tggate.client.journal import DeliveryJournal, outbox_key


def test_a_restarted_journal_remembers_what_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    first = DeliveryJournal(path)
    first.open()
    first.record("42:7:1700000000", 2)
    first.record(outbox_key("n:42:abc"), 1)
    first.close()
    again = DeliveryJournal(path)
    again.open()
    assert again.sent("42:7:1700000000") == 2
    assert again.sent(outbox_key("n:42:abc")) == 1
    assert again.sent("42:8:1700000001") == 0
    again.close()


def test_a_line_cut_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    path.write_text("42:7:1 1 1000000\n42:8:2 1 10", "utf-8")  # the last line lost its end
    journal = DeliveryJournal(path, clock=FakeClock(1_000_000.0))
    journal.open()
    assert journal.sent("42:7:1") == 1
    journal.close()


def test_entries_older_than_a_day_are_forgotten(tmp_path: Path) -> None:
    clock = FakeClock(1_000_000.0)
    path = tmp_path / "journal.log"
    journal = DeliveryJournal(path, clock=clock, max_age_s=60)
    journal.open()
    journal.record("old", 1)
    clock.advance(61)
    journal.record("new", 1)
    journal.open()  # re-read, as when the lease is taken again
    assert journal.sent("old") == 0 and journal.sent("new") == 1
    journal.close()


def test_compaction_keeps_the_newest_entries(tmp_path: Path) -> None:
    clock = FakeClock(1_000_000.0)
    path = tmp_path / "journal.log"
    journal = DeliveryJournal(path, clock=clock, keep=10)
    journal.open()
    for index in range(25):
        clock.advance(1)
        journal.record(f"k{index}", 1)
    journal.close()
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) <= 20
    reopened = DeliveryJournal(path, clock=clock, keep=10)
    reopened.open()
    assert reopened.sent("k24") == 1 and reopened.sent("k0") == 0
    reopened.close()
