"""A component forked from the demo's process (tggate_sandbox/forked.py) starts as a spawned one
would: with exactly its own environment, its output in its log, its exit status told, its name
in /proc, and it dies with the process that forked it.

The forking process is a real one here (a small script run by the test), as the demo is: a test
process has threads, which a fork must not copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tggate_sandbox.topology import DEMO_BOT_TOKEN, free_port

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# Forks one command, says the child's pid, waits for it and says how it ended.
_PARENT = """
import json, sys
from pathlib import Path
from tggate_sandbox.forked import fork_command
name, log, env, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
child = fork_command(name, argv, env, Path(log))
print(child.pid, flush=True)
print(child.wait(), flush=True)
"""


def _parent(name: str, log: Path, env: dict[str, str], argv: list[str]) -> subprocess.Popen[str]:
    # The forking process's own TGGATE_* variables: the child must see none of them (a log
    # level every command refuses, so one that leaked would be told).
    parent_env = {**os.environ, "TGGATE_BOT_TOKEN": DEMO_BOT_TOKEN, "TGGATE_LOG_LEVEL": "LOUD"}
    return subprocess.Popen(
        [sys.executable, "-c", _PARENT, name, str(log), json.dumps(env), json.dumps(argv)],
        env=parent_env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TGGATE_")}


def _line(parent: subprocess.Popen[str]) -> str:
    assert parent.stdout is not None
    return parent.stdout.readline().strip()


def _child(parent: subprocess.Popen[str]) -> int:
    pid = int(_line(parent))
    _children.append((pid, _start_time(pid)))
    return pid


@pytest.fixture
def parents() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for parent in started:
        if parent.poll() is None:
            parent.kill()
            parent.wait(30)
        if parent.stdout is not None:
            parent.stdout.close()
    # A child that outlived its parent (what the last test checks cannot happen) is not left.
    for pid, started_at in _children:
        if started_at is not None and _start_time(pid) == started_at:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _children.clear()


_children: list[tuple[int, str | None]] = []


def test_the_child_has_exactly_its_environment_and_its_exit_status_is_told(
    tmp_path: Path, parents: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "fake-telegram.log"
    # The fake refuses to start without a bot token, which only the forking process has.
    argv = ["fake-telegram", "--host", "127.0.0.1", "--port", str(free_port())]
    parent = _parent("fake-telegram", log, _base_env(), argv)
    parents.append(parent)
    pid = _child(parent)
    assert pid != parent.pid
    assert _line(parent) == "2"  # tggate's status for a configuration it refuses
    assert parent.wait(30) == 0
    said = log.read_text("utf-8")
    assert "TGGATE_BOT_TOKEN is not set" in said, said
    assert "TGGATE_LOG_LEVEL" not in said, said


def test_the_child_serves_under_its_name_and_stops_on_sigterm(
    tmp_path: Path, parents: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "fake-telegram.log"
    port = free_port()
    env = {**_base_env(), "TGGATE_BOT_TOKEN": DEMO_BOT_TOKEN}
    argv = ["fake-telegram", "--host", "127.0.0.1", "--port", str(port)]
    parent = _parent("fake-telegram", log, env, argv)
    parents.append(parent)
    pid = _child(parent)
    _wait_for_line(log, "listening on")
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "fake-telegram"
    os.kill(pid, signal.SIGTERM)
    assert _line(parent) == "0"  # a stop on request is a success, as for a spawned server


def test_the_child_dies_with_the_process_that_forked_it(
    tmp_path: Path, parents: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "fake-telegram.log"
    env = {**_base_env(), "TGGATE_BOT_TOKEN": DEMO_BOT_TOKEN}
    argv = ["fake-telegram", "--host", "127.0.0.1", "--port", str(free_port())]
    parent = _parent("fake-telegram", log, env, argv)
    parents.append(parent)
    pid = _child(parent)
    _wait_for_line(log, "listening on")
    started = _start_time(pid)
    parent.kill()
    parent.wait(30)
    # The kernel's SIGTERM makes uvicorn shut down; then the child is gone (or a zombie of
    # whoever adopted it). Waited for by the event itself: the log's last line.
    _wait_for_line(log, "Finished server process")
    assert _start_time(pid) in (None, started)
    assert not _running(pid, started)


def _wait_for_line(log: Path, text: str) -> None:
    for _ in range(6_000):  # bounded by looks, at 10 ms apart: a minute at most
        if log.exists() and text in log.read_text("utf-8", errors="replace"):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} never appeared in {log}:\n{log.read_text('utf-8')}")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return None if fields is None else fields[19]


def _running(pid: int, started: str | None) -> bool:
    """After its last log line it still has to exit: until it is gone or a zombie."""
    for _ in range(6_000):
        fields = _stat(pid)
        if fields is None or fields[19] != started or fields[0] == "Z":
            return False
        time.sleep(0.01)
    return True
