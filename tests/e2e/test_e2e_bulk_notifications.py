"""N in the bulk mode end to end (docs/scenarios.md#n2-bulk): the reference Main module's feed,
read once a tick with the service token, reaches every chat of the person through the timer,
the outbox and the sender of the real client, and no one else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.conftest import start_topology
from tests.e2e.driver import Telegram, create_notification, log_in_many, texts_after, wait_for_ticks

from tggate_sandbox.topology import Topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = start_topology(tmp_path_factory.mktemp("bulk"), bulk_notifications=True)
    try:
        yield topology
    finally:
        topology.stop()


def test_N_bulk_a_person_on_two_chats_gets_one_notification_on_each(
    topology: Topology, telegram: Telegram
) -> None:
    people = log_in_many(
        telegram,
        topology,
        [91_001, 91_002, 91_003],
        identity=lambda chat: "someone-else" if chat == 91_003 else "bulky",
    )
    create_notification(topology, "bulky", "Exam room changed")
    for chat in (91_001, 91_002):
        (message,) = people[chat].read(1, timeout=60)
        assert message["text"] == "🔔 Exam room changed"
    wait_for_ticks(topology, "notifications")  # a later tick would send a doubled one
    assert [texts_after(people[chat]) for chat in (91_001, 91_002, 91_003)] == [[], [], []]
