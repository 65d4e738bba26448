"""Restarting the whole system on its data folder (issue 9, finding 9), as `tggate demo` does.

Before issue 9 every run made a new session key while Redis kept the sessions sealed with the
old one: `/me` said "temporarily unavailable", every later command (`/logout` too) got no answer
at all, and the client's retries marked both replicas down in nginx. Now the topology keeps its
keys in the data folder, so a restart keeps people logged in; and a restart with another key (a
rotation done wrong) tells each chat once to log in again, and then works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import start_topology
from tests.e2e.driver import LOGGED_IN, Person, Telegram, log_in_many, resolve_login

from tggate.adapters.token_cipher import TokenCipher
from tggate_sandbox.topology import Topology

LOST = "Your session could not be restored, please log in again."
PROFILE = "👤 alice\nLogin: alice"


@contextmanager
def running(workdir: Path, **options: object) -> Iterator[tuple[Topology, Telegram]]:
    topology = start_topology(workdir, **options)
    telegram = Telegram.of(topology)
    try:
        yield topology, telegram
    finally:
        telegram.close()
        topology.stop()


def test_a_restart_keeps_people_logged_in_and_a_new_key_asks_them_to_log_in_again(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "demo"
    chat, bystander = 30_001, 30_002
    with running(workdir) as (topology, telegram):
        people = log_in_many(telegram, topology, [chat], identity="alice")
        assert people[chat].ask_one("/me").startswith(PROFILE)

    # The same data folder: its key opens the sessions, its JWT key the tokens.
    with running(workdir) as (topology, telegram):
        assert telegram.person(chat).ask_one("/me").startswith(PROFILE)

    # Another key, as after a rotation that dropped the old one.
    with running(workdir, session_key=TokenCipher.generate_key()) as (topology, telegram):
        person = telegram.person(chat)
        (lost,) = person.ask("/me")
        assert lost.startswith(LOST)
        # Answered, not retried into a storm: the next commands and other chats work at once.
        assert Person(telegram, bystander).ask_one("/help").startswith("I am the system's")
        assert person.ask_one("/logout").startswith("You are not logged in.")
        person.ask("/login code")
        resolve_login(topology, chat, identity="alice")
        assert person.read(1)[0]["text"] == LOGGED_IN["en"]
        assert person.ask_one("/me").startswith(PROFILE)
        assert not [
            line
            for name in topology.processes
            if name.startswith("logic")
            for line in topology.processes[name].tail(10**6).splitlines()
            if '"level": "error"' in line
        ]
