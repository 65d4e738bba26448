"""Notifications end to end (N1–N3, docs/scenarios.md#outbox, docs/contract.md#limits): from the
reference Main module through the timer, Bot Logic's durable outbox and the rate-limited sender."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import FAST, start_topology
from tests.e2e.driver import Telegram, create_notification, log_in_many, texts_after

from tggate_sandbox.topology import Topology

TICK_S = float(FAST["TGGATE_NOTIFICATION_CYCLE_INTERVAL_S"])


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    # This module kills its client: a topology of its own, with a short poller lease so the
    # restarted client (a new instance) takes over two seconds after the kill.
    topology = start_topology(
        tmp_path_factory.mktemp("notifications"), extra_env={"TGGATE_LEASE_TTL_S": "2"}
    )
    try:
        yield topology
    finally:
        topology.stop()


def test_N_notification_reaches_the_chat_within_two_ticks(
    topology: Topology, telegram: Telegram
) -> None:
    person = log_in_many(telegram, topology, [90_001], identity="nina")[90_001]
    created = time.monotonic()
    create_notification(topology, "nina", "Grade posted: py101 t1")
    (message,) = person.read(1, timeout=10)
    took = time.monotonic() - created
    print(f"notification delivered after {took:.2f}s (tick {TICK_S}s)")
    assert message["text"] == "🔔 Grade posted: py101 t1"
    # The next tick at most TICK_S away, one more if it had just started; the rest is processing.
    assert took < 2 * TICK_S + 2.0, f"took {took:.2f}s"
    person.nothing_more(wait=4 * TICK_S)


def test_N_notification_of_a_tick_whose_client_died_is_sent_once_after_restart(
    topology: Topology, telegram: Telegram
) -> None:
    person = log_in_many(telegram, topology, [90_002], identity="kim")[90_002]
    time.sleep(2 * TICK_S)  # "logged in" acknowledged: only the notification is in question
    topology.kill("client", signal.SIGKILL)
    create_notification(topology, "kim", "Deadline moved: db201 t2")
    # The tick the client ran just before it died: Bot Logic took the notification from the Main
    # module into its outbox and handed it out, but nobody sent or acknowledged it.
    tick = httpx.post(
        topology.logic_url + "/v1/cycles/notifications",
        headers={"X-Internal-Token": topology.internal_token},
        json={},
        timeout=10,
    )
    assert tick.status_code == 200, tick.text
    mine = [m for m in tick.json()["messages"] if m["chat_id"] == 90_002]
    assert [m["text"] for m in mine] == ["🔔 Deadline moved: db201 t2"]
    assert texts_after(person) == []  # not sent: the client is dead

    topology.restart("client")
    (message,) = person.read(1, timeout=20)
    assert message["text"] == "🔔 Deadline moved: db201 t2"
    person.nothing_more(wait=6 * TICK_S)  # acknowledged: later ticks do not send it again
    assert len(telegram.bot_messages(90_002)) == 3  # the code, "logged in", the notification


# ---- a burst within Telegram's limits ----


@pytest.fixture
def limited_topology(tmp_path: Path) -> Iterator[Topology]:
    # The fake Telegram enforces its limits (429 with retry_after, violations counted) and the
    # client runs with Telegram's real ones, as deployed.
    topology = start_topology(
        tmp_path,
        fake_telegram_rate_limits=True,
        extra_env={"TGGATE_SEND_PER_CHAT_INTERVAL_S": "1", "TGGATE_SEND_GLOBAL_PER_S": "30"},
    )
    try:
        yield topology
    finally:
        topology.stop()


def test_burst_of_200_notifications_honours_telegrams_limits_and_reaches_everyone(
    limited_topology: Topology,
) -> None:
    topology = limited_topology
    chats = list(range(91_001, 91_021))
    with contextlib.closing(Telegram.of(topology)) as telegram:
        people = log_in_many(telegram, topology, chats, identity=lambda c: f"burst-{c}")
        texts = {c: [f"Notice {i} for {c}" for i in range(10)] for c in chats}
        started = time.monotonic()
        for i in range(10):
            for c in chats:
                create_notification(topology, f"burst-{c}", texts[c][i])
        got = {c: [m["text"] for m in people[c].read(10, timeout=60)] for c in chats}
        took = time.monotonic() - started
        time.sleep(4 * TICK_S)  # room for a doubled one to show up
        stats = telegram.stats()
        print(
            f"200 notifications delivered in {took:.1f}s; "
            f"429s: {stats['rate_limited']}, violations: {stats['retry_after_violations']}"
        )
        for c in chats:
            assert got[c] == [f"🔔 {text}" for text in texts[c]], c
            assert texts_after(people[c]) == [], f"chat {c} got more than its ten"
        assert stats["retry_after_violations"] == 0
        # Ten per chat at one a second cannot take less than nine seconds.
        assert took > 9
