"""The topology's start-up failures are said at once, in one line (issue 9, finding 11): a
taken port before anything is spawned, a component that exits with its last log line. Before,
a busy demo port failed after 44 s with "the Telegram Client did not start polling" and a
JSONDecodeError, the cause only in a log file. And the secrets sessions outlive are kept in the
work directory (finding 9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tggate_sandbox.topology import Topology, TopologyError, free_port


def test_a_taken_port_is_said_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        topology = Topology(
            workdir=tmp_path, nginx=False, client=False, fixed_ports={"fake-telegram": port}
        )
        with pytest.raises(TopologyError) as refused:
            topology.start()
    assert str(refused.value) == (
        f"port {port} (fake-telegram) on 127.0.0.1 is already in use by another program"
    )
    assert topology.processes == {} and topology.redis is None


def test_a_picked_port_taken_before_its_component_binds_it_is_picked_again(
    tmp_path: Path,
) -> None:
    # Another program takes the port `free_port` picked, before the component could bind it:
    # here the first port handed out (reference-auth's) is one this test listens on.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = iter([port])
        topology = Topology(
            workdir=tmp_path,
            logic_replicas=1,
            nginx=False,
            client=False,
            pick_port=lambda: next(ports, None) or free_port(),
        )
        try:
            topology.start()
            moved = topology.ports["reference-auth"]
            assert moved != port
            assert httpx.get(topology.auth_url + "/healthz", timeout=10).status_code == 200
            # Those configured with its address know the new one: Bot Logic calls it, the fake
            # OAuth provider sends people back to it.
            assert topology.processes["logic-0"].env["TGGATE_AUTH_URL"] == topology.auth_url
            oauth = topology.processes["fake-oauth"].env
            assert oauth["TGGATE_AUTH_PUBLIC_URL"] == topology.auth_url
            assert all(p.alive for p in topology.processes.values())
            assert "address already in use" in (tmp_path / "reference-auth.log").read_text().lower()
        finally:
            topology.stop()


def test_a_component_that_exits_at_start_is_reported_with_its_last_line(tmp_path: Path) -> None:
    # Every tggate command refuses this setting at once, in one line, with status 2.
    topology = Topology(
        workdir=tmp_path, nginx=False, client=False, extra_env={"TGGATE_LOG_LEVEL": "LOUD"}
    )
    with pytest.raises(TopologyError) as failed:
        topology.start()
    message = str(failed.value)
    assert len(message.splitlines()) == 1, message
    name, _, rest = message.partition(" exited (status 2): tggate: TGGATE_LOG_LEVEL: ")
    assert name in topology.processes, message
    assert rest.endswith(f"(log: {tmp_path / name}.log)"), message
    assert not any(process.alive for process in topology.processes.values())


def test_a_busy_demo_port_is_one_line_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
        result = subprocess.run(
            [sys.executable, "-m", "tggate.cli", "demo", "--port", str(port), "--nginx", "off"],
            env={**env, "TGGATE_DATA_DIR": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"tggate demo: port {port} (fake-telegram) on 127.0.0.1 is already in use by another "
        "program"
    ]


def test_the_secrets_sessions_outlive_are_kept_in_the_work_directory(tmp_path: Path) -> None:
    kept = []
    for _ in range(2):
        topology = Topology(
            workdir=tmp_path, nginx=False, client=False, extra_env={"TGGATE_LOG_LEVEL": "LOUD"}
        )
        with pytest.raises(TopologyError):  # its components refuse to run; the secrets came first
            topology.start()
        kept.append((topology.session_key, topology.jwt_secret))
    assert kept[0] == kept[1] and all(kept[0])
    for name in ("session.key", "reference-jwt.key", "redis/password"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
