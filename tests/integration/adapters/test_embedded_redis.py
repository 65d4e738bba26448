"""The embedded redis-server: starts, answers, keeps an AOF, and never outlives its owner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tggate.adapters.embedded_redis import EmbeddedRedis, EmbeddedRedisError


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def wait_gone(pid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_starts_answers_and_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedRedis(data_dir=data_dir) as server:
        pid = server.pid
        assert pid is not None and alive(pid)
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with redis.Redis.from_url(server.url) as client:
            assert client.ping() is True
            client.set("k", "v")
        assert any(path.name.startswith("appendonly") for path in data_dir.iterdir())

    assert server.pid is None
    assert not alive(pid)


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path) as server, redis.Redis.from_url(server.url) as client:
        client.set("k", "kept")

    with EmbeddedRedis(data_dir=tmp_path) as server, redis.Redis.from_url(server.url) as client:
        assert client.get("k") == b"kept"


def test_stop_is_idempotent(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path).start()
    pid = server.pid
    server.stop()
    server.stop()

    assert pid is not None and not alive(pid)
    assert not server.running


def test_taken_port_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedRedis(data_dir=tmp_path, port=port, startup_timeout_s=5)

        with pytest.raises(EmbeddedRedisError, match="did not answer PING") as error:
            server.start()

    assert "log tail" in str(error.value)
    assert not server.running


CHILD = """
import sys, time
from pathlib import Path
from tggate.adapters.embedded_redis import EmbeddedRedis
server = EmbeddedRedis(data_dir=Path(sys.argv[1])).start()
print(server.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert alive(pid)

        parent.send_signal(signal.SIGKILL)  # no finalizer, no atexit: only the kernel is left
        parent.wait()

        assert wait_gone(pid), f"redis-server {pid} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
