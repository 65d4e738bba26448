"""Components forked from the demo's own process, their imports paid once (issue 11, item 7).

Started each as `python -m tggate.cli <command>`, the demo's seven Python components imported
FastAPI, pydantic, uvicorn, redis-py and the settings seven times over: about 5 of the 7.4
CPU-seconds the demo spent until Ready, on 2 cores. `Topology(fork=True)` (the demo's) imports
them once in its own process (`preload`), then forks each component from it (`fork_command`):
the child runs the very same `tggate.cli.main` with the component's arguments and environment,
and only builds its app.

What a fresh interpreter would have set up, the child sets up itself: a session of its own,
death with its parent, stdin from /dev/null and stdout/stderr into its log (unbuffered, as
PYTHONUNBUFFERED=1 makes the spawned ones), default signal handlers and exactly the environment
it was given. What a fork cannot redo:
- the variables Python reads only at start: every forked component shares the demo's hash seed
  (PYTHONHASHSEED), and PYTHONPROFILEIMPORTTIME times the shared imports in the demo's output;
- the command line `ps` shows, which is the demo's: the child names itself in /proc/<pid>/comm
  instead (`ps -o comm` shows `logic-0`, `fake-telegram`, …);
- the descriptors the demo has open, the embedded Redis's data-directory lock among them: the
  child keeps them rather than close numbers some Python object may still own.
Only the demo forks. The tests' topologies spawn each component: a test process has threads and
event loops, which a fork must not copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import io
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["PRELOADED", "Forked", "fork_command", "preload"]

# What the demo's components import at start (bench startup's import-times run lists them):
# everything but the Telegram Client's aiogram, which it imports only once it polls. A module
# missing here is imported by the component itself, as before; nothing depends on the list.
PRELOADED = (
    "tggate.settings",
    "tggate.serve",
    "tggate.bootstrap",
    "tggate.adapters.redis_connect",
    "tggate.adapters.redis_store",
    "tggate.logic.app",
    "tggate.logic.service",
    "tggate.client.service",
    "tggate.client.metrics",
    "tggate_sandbox.settings",
    "tggate_sandbox.reference.auth.app",
    "tggate_sandbox.reference.main.app",
    "tggate_sandbox.fakes.telegram.app",
    "tggate_sandbox.fakes.oauth.app",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
)

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def preload(modules: Sequence[str] = PRELOADED) -> None:
    """Import what every forked component would import again by itself."""
    for name in modules:
        importlib.import_module(name)


class Forked:
    """The part of `subprocess.Popen` the topology uses, for a forked component."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)


def fork_command(name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> Forked:
    """Run `tggate.cli.main(argv)` in a child of this process, as `python -m tggate.cli` would;
    the child is called `name` (its first 15 bytes) in /proc/<pid>/comm."""
    prctl = _prctl()
    parent = os.getpid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    # What this process printed but had not yet written would be written twice.
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(log)
        return Forked(pid)
    _child(name, argv, env, log, prctl, parent)  # never returns
    raise AssertionError("unreachable")


def _child(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log: int,
    prctl: Callable[..., int] | None,
    parent: int,
) -> None:
    code = 1
    try:
        os.setsid()  # Ctrl-C in a terminal reaches the demo only
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # if the demo is killed, so is this
            prctl(_PR_SET_NAME, name.encode()[:15])
        if os.getppid() != parent:  # the demo died before prctl took effect
            os._exit(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 lives as long as the process
        sys.stdout = _unbuffered(1)
        sys.stderr = _unbuffered(2)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)  # the demo's: its signals are not this process's
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["tggate", *argv]
        from tggate.cli import main

        main(list(argv))
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop)
    except BaseException:  # whatever ends the component ends the child, with its traceback
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        # Never back into the demo's own stack (its `finally` would stop the topology).
        os._exit(code)


def _exit_code(stop: SystemExit) -> int:
    """What the interpreter makes of `sys.exit(x)`."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def _unbuffered(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl: Callable[..., int] = ctypes.CDLL(libc_name, use_errno=True).prctl
    return prctl
