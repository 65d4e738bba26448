"""A Bot Logic replica killed mid-command (issue 9): the chat gets its answer within
2 × TGGATE_HTTP_TIMEOUT_S of the kill, from the other replica.

The replica holds the update's claim and renews it while it works; killed, it renews no more,
the claim lapses (TGGATE_CLAIM_TTL_S, 3 s) and the client's retry, which nginx hands to the
other replica, is handled there. The time bound is the requirement itself; the expected time is
about 3 s. Before issue 9 the claim lived 4 × the HTTP timeout + 5 s (25 s) whoever held it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import start_topology
from tests.e2e.driver import Telegram, log_in_many

from tggate_sandbox.topology import Topology

HTTP_TIMEOUT_S = 5.0


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topology = start_topology(tmp_path, extra_env={"TGGATE_HTTP_TIMEOUT_S": str(HTTP_TIMEOUT_S)})
    try:
        yield topology
    finally:
        topology.stop()


def in_progress(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("tggate_commands_in_progress "):
            return float(line.split()[1])
    return 0.0


def main_calls(topology: Topology, route: str) -> int:
    stats = httpx.get(
        topology.main_url + "/test/stats", headers=topology.test_api_headers, timeout=10
    ).json()
    return int(stats.get(route, 0))


def set_main_delay(topology: Topology, seconds: float) -> None:
    response = httpx.post(
        topology.main_url + "/test/delay",
        json={"seconds": seconds},
        headers=topology.test_api_headers,
        timeout=10,
    )
    response.raise_for_status()


def wait_for(check: object, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_replica_killed_mid_command_its_update_is_answered_by_the_other(
    topology: Topology,
) -> None:
    telegram = Telegram.of(topology)
    with contextlib.closing(telegram):
        (person,) = log_in_many(telegram, topology, [61_001]).values()
        route = "GET /api/me"
        before = main_calls(topology, route)
        # The Main module holds the action (past the HTTP timeout: only the kill ends it).
        set_main_delay(topology, 60)
        person.say("/me")
        wait_for(lambda: main_calls(topology, route) > before, timeout_s=30, what="the call")
        holders = [name for name in ("logic-0", "logic-1") if in_progress(topology.url(name)) >= 1]
        assert len(holders) == 1, holders

        topology.kill(holders[0], signal.SIGKILL)
        killed = time.monotonic()
        set_main_delay(topology, 0)
        (answer,) = person.read(1, timeout=4 * HTTP_TIMEOUT_S)
        answered = time.monotonic()

    print(f"{holders[0]} killed; answered {answered - killed:.1f}s later")
    assert "Login: alice" in answer["text"]
    assert answered - killed <= 2 * HTTP_TIMEOUT_S
