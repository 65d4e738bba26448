"""`tggate demo` as a newcomer runs it (issue 4): start, open the URL it prints, Ctrl-C.

The real command in a real process (`python -m tggate.cli demo`, what `uv run tggate demo` runs),
with its data in a temporary directory. Before Ctrl-C the test records every process the demo
started (the whole tree under it, via /proc) and every port they listen on; after it, none of
them may be left. The start-up time is printed, not asserted (benchmarks measure, tests check):
only a generous bound fails the test.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.support.sandbox import TEST_API, TEST_API_SECRET

from tggate_sandbox.topology import free_port

READY_WITHIN_S = 60.0
STOPPED_WITHIN_S = 60.0
URL = re.compile(r"http://127\.0\.0\.1:(\d+)\S*")

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


# ---- what /proc says ----


@dataclass(frozen=True)
class Proc:
    """A process, told apart from a later one with the same pid by its start time."""

    pid: int
    started: int  # clock ticks after boot (/proc/<pid>/stat field 22)

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        fields = _stat(pid)
        return None if fields is None else cls(pid, int(fields[19]))

    def alive(self) -> bool:
        fields = _stat(self.pid)
        # A zombie has ended; it only waits for its new parent to reap it.
        return fields is not None and int(fields[19]) == self.started and fields[0] != "Z"

    def describe(self) -> str:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return f"{self.pid} (gone)"
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        return f"{self.pid}: {command}"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def descendants(root: int) -> set[Proc]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    found: set[Proc] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        proc = Proc.of(pid)
        if proc is not None:
            found.add(proc)
            todo += children.get(pid, [])
    return found


def listening_ports(procs: set[Proc]) -> set[int]:
    """TCP ports the processes listen on (their socket inodes in /proc/net/tcp{,6})."""
    inodes: set[str] = set()
    for proc in procs:
        fd_dir = Path(f"/proc/{proc.pid}/fd")
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return {port for port, inode in _listening_sockets() if inode in inodes}


def _listening_sockets() -> Iterator[tuple[int, str]]:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                yield int(fields[1].rsplit(":", 1)[1], 16), fields[9]


def mentioning(text: str) -> list[str]:
    """Every process whose command line or environment mentions `text` (our data dir)."""
    needle = text.encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle in Path(f"/proc/{pid}/{name}").read_bytes():
                    found.append(Proc(pid, 0).describe())
                    break
            except OSError:
                continue
    return found


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


# ---- the demo process ----


class Demo:
    """`tggate demo` in a process of its own; its output read line by line as it comes."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
        env.update({"TGGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
        # The test drives the demo through the fake Telegram's test API, so it names the secret.
        env["TGGATE_TEST_API_SECRET"] = TEST_API_SECRET
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tggate.cli", "demo", "--port", str(port)],
            env=env,
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def read_until(self, marker: str, *, deadline: float) -> bool:
        """Collect output until a line containing `marker` (True), the end or the deadline."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.output.append(line)
            if marker in line:
                return True
        return False

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def finish(self) -> None:
        """Read the rest of the output and close the pipe (the process has ended)."""
        self._reader.join(timeout=10)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.output.append(line)
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_demo_starts_answers_and_stops_without_leftovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    web_chat_port = free_port()
    started = time.monotonic()
    demo = Demo(data_dir, web_chat_port)
    tree: set[Proc] = set()
    try:
        ready = demo.read_until("Press Ctrl-C", deadline=started + READY_WITHIN_S)
        assert ready, f"not ready within {READY_WITHIN_S:.0f} s:\n{demo.text}"
        elapsed = time.monotonic() - started
        reported = re.search(r"Ready in ([\d.]+) s", demo.text)
        assert reported is not None, demo.text
        print(f"\ntggate demo: ready {elapsed:.1f} s after exec (it reports {reported[1]} s)")

        # One URL to open, the web chat; it answers, and so do the pages printed with it.
        opened = re.search(r"Open (\S+) in a browser", demo.text)
        assert opened is not None, demo.text
        web_chat = opened[1]
        assert web_chat == f"http://127.0.0.1:{web_chat_port}/"
        page = httpx.get(web_chat, timeout=10)
        assert page.status_code == 200
        assert 'id="person-name"' in page.text
        printed_ports = {int(port) for port in URL.findall(demo.text)}
        for url in URL.finditer(demo.text):
            if url[0].endswith(("/code", "/notify")):
                assert httpx.get(url[0], timeout=10).status_code == 200, url[0]
        # The notification page signs in with the admin password printed with it.
        notify = re.search(r"(http://\S+/notify)\n\s+its admin password:\s+(\S+)", demo.text)
        assert notify is not None, demo.text
        with httpx.Client(timeout=10) as browser:
            page = browser.get(notify[1])
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None, page.text
            signin = {"csrf": csrf[1], "password": notify[2]}
            signed = browser.post(notify[1] + "/signin", data=signin)
            assert signed.status_code == 303, signed.text
            assert 'id="notify-form"' in browser.get(notify[1]).text

        # Ready means answering: a /start now gets the bot's help and login offer.
        inject = {"chat_id": 42, "text": "/start", "language_code": "en"}
        inject_url = web_chat + "_test/inject"
        httpx.post(inject_url, json=inject, headers=TEST_API, timeout=10).raise_for_status()
        answer = httpx.get(
            web_chat + "_test/wait",
            params={"chat_id": 42, "count": 2, "timeout": 20},
            headers=TEST_API,
            timeout=30,
        )
        assert answer.status_code == 200, demo.text
        assert "You are not logged in." in answer.json()[-1]["text"]

        # What there is to clean up: the process tree and the ports it listens on.
        tree = descendants(demo.process.pid)
        ports = listening_ports(tree)
        assert len(tree) >= 8, [p.describe() for p in tree]  # Redis, 4 services, 2 logic, client
        assert printed_ports <= ports, (printed_ports, ports)

        # Ctrl-C: the terminal sends SIGINT to the demo (its children run in sessions of their own).
        stopping = time.monotonic()
        demo.process.send_signal(signal.SIGINT)
        code = demo.process.wait(timeout=STOPPED_WITHIN_S)
        print(f"tggate demo: stopped {time.monotonic() - stopping:.1f} s after Ctrl-C")
        demo.finish()
        assert code == 0, demo.text
        assert demo.output[-1] == "Stopped.", demo.text

        left = [proc.describe() for proc in tree if proc.alive()]
        assert left == [], left
        assert mentioning(str(data_dir)) == []
        still_listening = {port for port, _ in _listening_sockets()} & ports
        assert still_listening == set()
        assert all(refuses(port) for port in ports), ports
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait(10)
            demo.finish()
        for proc in tree:
            if proc.alive():
                os.kill(proc.pid, signal.SIGKILL)
