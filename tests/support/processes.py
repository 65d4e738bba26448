"""Run a tggate component as its own OS process (`python -m tggate.cli <command>`), for a test.

Two Bot Logic replicas in two processes share nothing but Redis, as in production: a lock that
lives in one process's memory cannot pass for the Redis lock the way it could between two apps
of one process (issue 9, the single-flight refresh proof).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tggate.adapters.embedded_redis import die_with_parent
from tggate_sandbox.topology import free_port

__all__ = ["run_component"]


@contextmanager
def run_component(
    command: str,
    env: Mapping[str, str],
    *,
    log_path: Path,
    ready_path: str = "/readyz",
    startup_timeout_s: float = 60.0,
) -> Iterator[str]:
    """Start `tggate <command>` on a free loopback port with `env` (TGGATE_* settings) added to
    ours, wait until `ready_path` answers 200, and yield its base URL; stopped at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    argv = [sys.executable, "-m", "tggate.cli", command, "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            env={**inherited, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
    try:
        # Waiting for start-up, not asserting on time: the deadline only ends a hopeless wait.
        deadline = time.monotonic() + startup_timeout_s
        while not _ready(url + ready_path):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"tggate {command} did not get ready:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
