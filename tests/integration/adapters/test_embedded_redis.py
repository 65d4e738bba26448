"""The embedded redis-server: starts, answers, keeps an AOF, and never outlives its owner; wants
a password, keeps its files private and serves one process per data directory (issue 9)."""

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


def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
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
        assert server.url == f"redis://:{server.password}@127.0.0.1:{server.port}/0"
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


def test_a_client_without_the_password_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path) as server:
        with (
            redis.Redis(host="127.0.0.1", port=server.port) as stranger,
            pytest.raises(redis.AuthenticationError),
        ):
            stranger.ping()
        with redis.Redis.from_url(server.url) as client:
            assert client.config_get("protected-mode") == {"protected-mode": "yes"}


def test_the_password_is_kept_private_and_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path) as server:
        first = server.password
        # `ps` shows every user the command line: the password is not in it.
        assert server.pid is not None
        assert first not in Path(f"/proc/{server.pid}/cmdline").read_text(errors="replace")
        assert first not in repr(server)
    with EmbeddedRedis(data_dir=tmp_path) as server, redis.Redis.from_url(server.url) as client:
        assert server.password == first
        assert client.ping() is True
    assert (tmp_path / "password").stat().st_mode & 0o777 == 0o600


def test_data_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    old_aof = tmp_path / "appendonly.aof"
    old_aof.write_text("")  # as an older version left it, world-readable
    old_aof.chmod(0o644)
    with EmbeddedRedis(data_dir=tmp_path) as server, redis.Redis.from_url(server.url) as client:
        client.set("session", "tokens")
        files = list(tmp_path.rglob("*"))
    # Written by the server (its log) and by us (config, password, lock), or left from before.
    assert {"appendonly.aof", "redis-server.log", "redis.conf", "password"} <= {
        path.name for path in files
    }
    loose = {path.name: oct(path.stat().st_mode & 0o777) for path in files}
    assert {name: mode for name, mode in loose.items() if mode != "0o600"} == {}


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path) as first, redis.Redis.from_url(first.url) as client:
        second = EmbeddedRedis(data_dir=tmp_path)
        with pytest.raises(EmbeddedRedisError, match=f"another process \\(pid {os.getpid()}\\)"):
            second.start()
        assert not second.running
        assert client.ping() is True  # the first one is untouched
    # Once the owner stopped, the directory is free again.
    with EmbeddedRedis(data_dir=tmp_path) as again, redis.Redis.from_url(again.url) as client:
        assert client.ping() is True
