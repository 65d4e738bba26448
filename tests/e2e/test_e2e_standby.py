"""One poller per bot token (docs/scenarios.md#components, docs/scenarios.md#lease): a second
Telegram Client stands by instead of fighting the first over getUpdates, and takes over when the
first dies; a 409 from Telegram (someone else polling the token) is waited out with back-off,
logged once."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import start_topology
from tests.e2e.driver import (
    Person,
    Telegram,
    log_in_many,
    process_log,
    texts_after,
    wait_until_confirmed,
)
from tests.support.waiting import eventually_sync

from tggate_sandbox.topology import Topology

CONFLICT_OF = "getUpdates (409: another poller uses this bot token)"
CONFLICT = CONFLICT_OF + " failed"
AFTER = re.compile(r"works again after (\d+) failures")
COMMANDS = ["/me", "/courses", "/grades", "/tasks py101", "/course ml301"]


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topology = start_topology(tmp_path)
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def telegram(topology: Topology) -> Iterator[Telegram]:
    with contextlib.closing(Telegram.of(topology)) as client:
        yield client


def messages_of(topology: Topology, name: str) -> list[str]:
    return [str(entry.get("msg", "")) for entry in process_log(topology, name)]


def get_updates_calls(telegram: Telegram) -> int:
    calls: int = telegram.stats()["calls"].get("getUpdates", 0)
    return calls


def say_all(people: list[Person], commands: list[str]) -> None:
    telegram = people[0].telegram
    telegram.inject_many(
        [
            {"chat_id": p.chat_id, "text": command, "language_code": "en"}
            for command in commands
            for p in people
        ]
    )


def test_standby_client_does_not_poll_and_takes_over_when_the_holder_dies(
    topology: Topology, telegram: Telegram
) -> None:
    people = list(log_in_many(telegram, topology, [95_001, 95_002]).values())
    control = log_in_many(telegram, topology, [95_000])[95_000]
    reply_to = {command: control.ask_one(command) for command in COMMANDS}

    topology.start_named_client("client-2")
    eventually_sync(
        lambda: any("waiting for the poller lease" in m for m in messages_of(topology, "client-2")),
        what="client-2 refused the lease",
    )
    # While both run, the holder alone polls: over a whole long poll of the holder's (5 s here)
    # no poll ended another's (two pollers would end each other's with 409 at once).
    before = get_updates_calls(telegram)
    eventually_sync(lambda: get_updates_calls(telegram) >= before + 2, what="a whole long poll")
    assert telegram.stats()["poll_conflicts"] == 0, "two pollers fought over getUpdates"
    say_all(people, COMMANDS)
    for p in people:
        assert [m["text"] for m in p.read(len(COMMANDS))] == [reply_to[c] for c in COMMANDS]
    assert not any("lease acquired" in m for m in messages_of(topology, "client-2"))
    for name in ("client", "client-2"):
        assert not any(CONFLICT in m for m in messages_of(topology, name)), name

    # The holder dies (idle: a kill right after a send may repeat that reply, which is the crash
    # tests' subject, not this one's); messages arrive while nobody polls; the standby takes over.
    wait_until_confirmed(telegram)
    topology.kill("client", signal.SIGKILL)
    say_all(people, COMMANDS)
    # The event itself: the standby takes the lease once the dead holder's lapses, then answers
    # (the read's timeout only ends a wait that would otherwise never end).
    eventually_sync(
        lambda: any("lease acquired" in m for m in messages_of(topology, "client-2")),
        what="client-2 took the lease over",
    )
    first = people[0].read(1, timeout=60)
    assert first[0]["text"] == reply_to[COMMANDS[0]]
    assert [m["text"] for m in people[0].read(len(COMMANDS) - 1)] == [
        reply_to[c] for c in COMMANDS[1:]
    ]
    assert [m["text"] for m in people[1].read(len(COMMANDS))] == [reply_to[c] for c in COMMANDS]
    wait_until_confirmed(telegram)  # from now on no reply can come again
    assert all(texts_after(p) == [] for p in people), "a reply came twice"
    # Taken over once, and kept: no flapping between holder and standby.
    assert sum("lease acquired" in m for m in messages_of(topology, "client-2")) == 1
    assert not any(CONFLICT in m for m in messages_of(topology, "client-2"))


class RoguePoller:
    """Someone else long-polling the same bot token (another deployment, a developer's laptop).

    It passes no offset, so it confirms nothing: the updates stay for the real client."""

    def __init__(self, topology: Topology) -> None:
        self._url = f"{topology.telegram_url}/bot{topology.bot_token}/getUpdates"
        self._stop = threading.Event()
        self.answers: Counter[int] = Counter()
        self._thread = threading.Thread(target=self._run, name="rogue-poller", daemon=True)

    def __enter__(self) -> RoguePoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(self._url, json={"timeout": 2})
                except httpx.HTTPError:
                    continue
                self.answers[response.status_code] += 1


def test_a_rival_poller_409_is_waited_out_logged_once_and_nothing_is_lost(
    topology: Topology, telegram: Telegram
) -> None:
    person = log_in_many(telegram, topology, [96_001])[96_001]
    me, courses = person.ask_one("/me"), person.ask_one("/courses")
    pid = topology.processes["client"].popen.pid  # type: ignore[union-attr]

    with RoguePoller(topology) as rogue:
        eventually_sync(lambda: rogue.answers[409] >= 2, what="the rival polls in conflict")
        person.say("/me")  # while the two fight over getUpdates
        fought = rogue.answers[409]
        eventually_sync(lambda: rogue.answers[409] >= fought + 3, what="more conflicts")
    print(f"the rogue poller got {dict(rogue.answers)}")
    assert rogue.answers[409] > 0, "no conflict happened: the test proves nothing"

    # The client kept running, and answers what came during the conflict and after it.
    person.say("/courses")
    assert [m["text"] for m in person.read(2, timeout=45)] == [me, courses]
    wait_until_confirmed(telegram)  # from now on no reply can come again
    assert texts_after(person) == []
    process = topology.processes["client"]
    assert process.alive and process.popen is not None and process.popen.pid == pid

    log = process_log(topology, "client")
    assert not [e for e in log if e.get("level") in ("error", "critical")]
    # Each streak of 409s gives one warning when it starts and one line when it ends (the client
    # may win a poll now and then while the rival runs, which ends a streak).
    streaks = [
        e for e in log if e.get("logger") == "tggate.client.poller" and CONFLICT_OF in e["msg"]
    ]
    print("client log:", *(e["msg"][:100] for e in streaks), sep="\n  ")
    kinds = ["start" if e["level"] == "warning" else "end" for e in streaks]
    assert kinds and kinds == ["start", "end"] * (len(kinds) // 2), kinds
    failures = [int(m.group(1)) for e in streaks if (m := AFTER.search(e["msg"]))]
    print(f"409s the client got: {sum(failures)}, in {len(failures)} streaks")
    assert max(failures) >= 2, "no streak of several 409s: logging once per streak is untested"
