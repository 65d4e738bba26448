"""The seed's whole topology as real processes (tggate_sandbox.topology) for end-to-end tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.driver import Telegram

from tggate_sandbox.topology import Topology, find_nginx

# Fast timers, and no per-chat pause between replies: the tests that measure Telegram's limits
# set their own values. Everything else is as deployed.
FAST = {
    "TGGATE_LOGIN_CYCLE_INTERVAL_S": "0.5",
    "TGGATE_NOTIFICATION_CYCLE_INTERVAL_S": "0.5",
    "TGGATE_SEND_PER_CHAT_INTERVAL_S": "0",
    "TGGATE_SEND_GLOBAL_PER_S": "1000",
    "TGGATE_POLL_TIMEOUT_S": "5",
}


def require_nginx() -> None:
    if find_nginx() is None:
        pytest.fail("nginx is not installed: apt-get install nginx (.ci/run does)")


def start_topology(workdir: Path, **options: object) -> Topology:
    require_nginx()
    env = dict(FAST)
    env.update(options.pop("extra_env", {}))  # type: ignore[arg-type]
    topology = Topology(workdir=workdir, extra_env=env, **options)  # type: ignore[arg-type]
    topology.start()
    return topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """One shared topology per test module; tests use chat ids of their own."""
    topology = start_topology(tmp_path_factory.mktemp("topology"))
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="module")
def telegram(topology: Topology) -> Iterator[Telegram]:
    client = Telegram.of(topology)
    yield client
    client.close()


_chat_ids = itertools.count(10_000)


@pytest.fixture
def chat_id() -> int:
    return next(_chat_ids)
