"""`tggate demo`: the whole system on this machine, no Telegram account and no configuration."""

from __future__ import annotations

import select
import signal
import socket
import sys
import time
from pathlib import Path

from tggate.settings import Settings
from tggate_sandbox.settings import SandboxSettings
from tggate_sandbox.topology import Topology, TopologyError, find_nginx

__all__ = ["run_demo"]


def run_demo(
    settings: Settings, sandbox: SandboxSettings, *, host: str, port: int, nginx: str
) -> None:
    """The secrets are made here unless given (TGGATE_TEST_API_SECRET for tests that drive the
    demo, TGGATE_REFERENCE_ADMIN_SECRET for a password of one's own on /notify). The keys that
    sessions outlive stay in the data folder, so a restart keeps people logged in (issue 9)."""
    use_nginx = nginx == "on" or (nginx == "auto" and find_nginx() is not None)
    started = time.monotonic()

    def progress(step: str) -> None:
        print(f"  starting {step} …", flush=True)

    topology = Topology(
        workdir=Path(settings.data_dir).resolve() / "demo",
        nginx=use_nginx,
        # Without nginx: one Bot Logic with two uvicorn workers instead of two replicas.
        logic_replicas=2 if use_nginx else 1,
        logic_workers=1 if use_nginx else 2,
        host=host,
        fixed_ports={"fake-telegram": port},
        progress=progress,
        fork=True,
    )
    # Secrets given in the environment win over those the topology made.
    topology.test_api_secret = sandbox.optional_test_api_secret() or topology.test_api_secret
    topology.admin_secret = sandbox.optional_admin_secret() or topology.admin_secret
    stop = _StopSignals()
    print("tggate demo", flush=True)
    try:
        topology.start()
    except TopologyError as error:
        print(f"tggate demo: {error}", file=sys.stderr)
        sys.exit(1)
    try:
        elapsed = time.monotonic() - started
        front = "nginx → 2 Bot Logic replicas" if use_nginx else "Bot Logic (2 workers)"
        # Issue 4: one URL to open, first; the pages a first session visits next to it.
        print(
            f"\nReady in {elapsed:.1f} s: fake Telegram → Telegram Client → {front}"
            f" → Redis + reference modules.\n"
            f"\n  Open {topology.telegram_url}/ in a browser to chat with the bot.\n"
            f"\n  Login pages (Authorization module): {topology.auth_url}/code\n"
            f"  Send a notification (Main module):  {topology.main_url}/notify\n"
            f"    its admin password:               {topology.admin_secret}\n"
            f"  Bot Logic:                          {topology.logic_url}\n"
            f"  Logs:                               {topology.workdir}\n"
            f"\nPress Ctrl-C to stop everything.",
            flush=True,
        )
        while not stop.asked:
            for process in topology.processes.values():
                if process.failed:
                    print(f"tggate demo: {process.exited()}", flush=True)
                    stop.asked = True
            stop.wait(1.0)
    finally:
        print("\nStopping …", flush=True)
        topology.stop()
        print("Stopped.", flush=True)


class _StopSignals:
    """SIGINT and SIGTERM, asking the demo to stop. The handler only records the signal, and
    takes no lock: it runs between two steps of the main thread, wherever that is, and a second
    signal can come while the first handler runs (`timeout` and `uv run` each send SIGTERM; an
    impatient second Ctrl-C). A `threading.Event` set there deadlocked on its own lock. The
    wait wakes through the wakeup file descriptor, which the interpreter writes to at once."""

    def __init__(self) -> None:
        self.asked = False
        self._reader, writer = socket.socketpair()
        self._writer = writer  # kept open as long as the wakeup descriptor is in use
        for end in (self._reader, writer):
            end.setblocking(False)
        signal.set_wakeup_fd(writer.fileno())
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: object) -> None:
        self.asked = True

    def wait(self, seconds: float) -> None:
        """Until a signal comes, or `seconds` pass."""
        select.select([self._reader], [], [], seconds)
        try:
            while self._reader.recv(512):
                pass
        except BlockingIOError:
            pass
