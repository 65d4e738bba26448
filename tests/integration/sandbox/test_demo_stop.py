"""`tggate demo` stops on SIGTERM and SIGINT however many come, and however close together:
`timeout` and `uv run` each send one, an impatient person presses Ctrl-C twice. Its handler
once set a `threading.Event`, which deadlocked on the event's own lock when a second signal came
while the first handler ran; the demo then hung with every component still running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.redis_servers import free_port

# Signals sent back to back while the demo runs, at most: each one that lands while a handler
# runs is a chance for a handler taking a lock to deadlock.
_SIGNALS = 20_000


def test_a_flood_of_stop_signals_stops_the_demo_and_its_components(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "tggate.cli", "demo", "--port", str(free_port()), "--nginx", "off"],
        env={**env, "TGGATE_DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen: list[str] = []
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("Ready in"):
                break
        assert seen and seen[-1].startswith("Ready in"), "".join(seen)
        components = _children(demo.pid)
        assert components
        sent = 0
        try:
            while sent < _SIGNALS and demo.poll() is None:
                os.kill(demo.pid, signal.SIGTERM if sent % 2 else signal.SIGINT)
                sent += 1
        except ProcessLookupError:
            pass
        # The bound turns a demo that hangs into a failure, not a hung test.
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()  # its components die with it (PR_SET_PDEATHSIG)
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
    assert demo.returncode == 0, rest
    assert rest.rstrip().endswith("Stopped."), rest
    assert not [pid for pid in components if _alive(pid)]


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
