"""The seed's whole topology as real processes on loopback (docs/scenarios.md#components):

Telegram (fake) → Telegram Client → nginx → Bot Logic replicas → Redis + reference modules.

In webhook mode (docs/webhook.md) the fake Telegram posts updates to nginx, which hands them to
the intake replicas (`tggate intake`) instead: Telegram (fake) → nginx → intake replicas → nginx →
Bot Logic replicas. With `intake_replicas` but not `webhook`, the topology starts polling with
nginx ready for the replicas, for a test that switches modes (`start_intake`, `set_webhook`,
`delete_webhook`).

Used by `tggate demo` and by the end-to-end tests. Every component is a separate process on a
free port, started with `python -m tggate.cli …`, or in the demo forked from the demo's own
process once it has imported what they all import (`fork`, tggate_sandbox/forked.py); stopping
the topology leaves none behind. nginx starts once the Bot Logic replicas answer, the Telegram
Client once nginx does.

The topology makes every secret the components need: the JWT key of the reference modules, the
Main module's admin secret (the `/notify` page's password, `X-Admin-Secret`), and the test API
secret that turns the sandbox servers' test APIs on (`test_api_headers` for the tests' calls).
The secrets that sessions outlive are kept in the work directory (0600) unless given: the key
that seals sessions in Redis and the reference modules' JWT key, so a restart on the same
directory keeps people logged in (issue 9, finding 9); the embedded Redis keeps its password
there itself.

It checks that its ports are free before it spawns anything, and a component that exits while
the topology starts is reported at once with its last log line (issue 9, finding 11). It waits
for each server's `/healthz`, never for a test endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tggate.adapters.embedded_redis import EmbeddedRedis, EmbeddedRedisError, die_with_parent
from tggate.adapters.token_cipher import TokenCipher
from tggate_sandbox.credentials import ADMIN_HEADER, TEST_API_HEADER
from tggate_sandbox.forked import Forked, fork_command, preload

__all__ = [
    "NGINX_TEMPLATE",
    "Topology",
    "TopologyError",
    "find_nginx",
    "free_port",
    "kept_secret",
    "port_in_use",
]

# The repository's deploy/nginx.conf: the sandbox runs from a checkout (a workspace member).
NGINX_TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "nginx.conf"
NGINX_WEBHOOK_TEMPLATE = NGINX_TEMPLATE.with_name("nginx-webhook.conf")
WEBHOOK_PATH = "/telegram/webhook"
DEMO_BOT_TOKEN = "123456789:TGGATE-demo-token-for-the-fake-telegram-0"


# A component's argv: [python, "-m", "tggate.cli", command, ...]; a forked one gets the rest.
_TGGATE_CLI = 3

# How often a component may move off a picked port another program took before it bound it.
_PORT_ATTEMPTS = 3


class TopologyError(RuntimeError):
    """A component did not start; the message names it and ends with its last log lines."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on `port`: binding as the servers do (SO_REUSEADDR, so a port
    in TIME_WAIT counts as free) fails."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path` (0600), made by `make` and written there the first time."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text("utf-8").strip()
        if not kept:
            raise TopologyError(f"{path} is empty; delete it to make a new one") from None
        return kept
    secret = make()
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(secret + "\n")
    return secret


def _last_line(text: str) -> str:
    """A log's last line as a person reads it: the message of a JSON log line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "(nothing logged)"
    last = lines[-1]
    try:
        entry = json.loads(last)
    except ValueError:
        return last.strip()
    return str(entry.get("msg", last)) if isinstance(entry, dict) else last.strip()


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(200 <= response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


@dataclass
class _Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None
    popen: subprocess.Popen[bytes] | Forked | None = None
    stopped_on_purpose: bool = False  # killed by `Topology.kill`: its exit is no failure
    # A tggate command forked from this process (`Topology.fork`) instead of a new interpreter.
    forked: bool = False

    def start(self) -> None:
        self.stopped_on_purpose = False
        if self.forked:
            self.popen = fork_command(self.name, self.argv[_TGGATE_CLI:], self.env, self.log_path)
            return
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches the supervisor only
                preexec_fn=die_with_parent(),  # and if the supervisor is killed, so are they
            )
        finally:
            log.close()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def wait(self, timeout_s: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def failed(self) -> bool:
        """It was started, has exited, and nobody stopped it."""
        return self.popen is not None and not self.alive and not self.stopped_on_purpose

    def exited(self) -> str:
        """One line: which component exited, and the last thing it said."""
        assert self.popen is not None
        return (
            f"{self.name} exited (status {self.popen.returncode}): "
            f"{_last_line(self.tail(5))} (log: {self.log_path})"
        )


@dataclass
class Topology:
    """Start with `start()` (or `with Topology(...) as t:`); URLs are known once started."""

    workdir: Path
    logic_replicas: int = 2
    nginx: bool = True
    client: bool = True
    bot_token: str = DEMO_BOT_TOKEN
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # "": kept in the work directory (made on the first start), so tokens outlive a restart.
    jwt_secret: str = ""
    test_api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    extra_env: Mapping[str, str] = field(default_factory=dict)
    fake_telegram_rate_limits: bool = False
    logic_workers: int = 1
    host: str = "127.0.0.1"
    progress: Callable[[str], None] = lambda _message: None
    fixed_ports: Mapping[str, int] = field(default_factory=dict)
    # A local fake GitHub + Yandex ID, so the OAuth flows run end to end with no credentials.
    fake_oauth: bool = True
    oauth_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Tokens encrypted at rest, as a production deployment should run. "": kept in the work
    # directory (made on the first start), so sessions outlive a restart (issue 9, finding 9).
    session_key: str = ""
    # Webhook mode: the intake replicas behind nginx, and the webhook set at Telegram (then no
    # polling client is started).
    webhook: bool = False
    intake_replicas: int = 0
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Where the ports not in `fixed_ports` come from (a test may hand out a taken one first).
    pick_port: Callable[[], int] = free_port
    # The bulk notification mode (docs/scenarios.md#n2-bulk): Bot Logic reads the reference
    # Main module's feed with a service token both are given; the source design's per-chat
    # mode otherwise.
    bulk_notifications: bool = False
    service_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The demo's: the Python components are forked from this process once it has imported what
    # they all import (tggate_sandbox/forked.py). Only for a process with no other threads and
    # no event loop of its own, which is why the tests' topologies spawn each one instead.
    fork: bool = False

    redis: EmbeddedRedis | None = None
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, _Process] = field(default_factory=dict)
    # How to start each component again: its extra arguments, ready path and tggate command.
    _spawned: dict[str, tuple[list[str], str | None, str | None]] = field(default_factory=dict)
    _moves: dict[str, int] = field(default_factory=dict)  # port changes per component

    # ---- URLs ----

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    @property
    def telegram_url(self) -> str:
        return self.url("fake-telegram")

    @property
    def auth_url(self) -> str:
        return self.url("reference-auth")

    @property
    def oauth_url(self) -> str:
        return self.url("fake-oauth")

    @property
    def main_url(self) -> str:
        return self.url("reference-main")

    @property
    def logic_url(self) -> str:
        """Where the Telegram Client sends requests: nginx, or the only replica."""
        return self.url("nginx") if self.nginx else self.url("logic-0")

    def logic_replica_urls(self) -> list[str]:
        return [self.url(f"logic-{i}") for i in range(self.logic_replicas)]

    @property
    def webhook_url(self) -> str:
        """Where the fake Telegram posts updates: nginx's webhook server."""
        return self.url("nginx-webhook") + WEBHOOK_PATH

    def intake_urls(self) -> list[str]:
        return [self.url(f"intake-{i}") for i in range(self.intake_replicas)]

    @property
    def test_api_headers(self) -> dict[str, str]:
        """What a call to any component's test API carries."""
        return {TEST_API_HEADER: self.test_api_secret}

    @property
    def admin_headers(self) -> dict[str, str]:
        """What a call to the Main module's admin API (POST /notifications) carries."""
        return {ADMIN_HEADER: self.admin_secret}

    # ---- life cycle ----

    def __enter__(self) -> Topology:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.session_key = self.session_key or kept_secret(
            self.workdir / "session.key", TokenCipher.generate_key
        )
        self.jwt_secret = self.jwt_secret or kept_secret(
            self.workdir / "reference-jwt.key", lambda: secrets.token_urlsafe(32)
        )
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if self.nginx and find_nginx() is None:
            raise TopologyError("nginx is not installed (apt-get install nginx)")
        if self.webhook and not (self.nginx and self.intake_replicas):
            raise TopologyError("webhook mode needs nginx and at least one intake replica")
        names = ["reference-auth", "reference-main", "fake-telegram", "nginx", "fake-oauth"]
        names += [f"logic-{index}" for index in range(self.logic_replicas)]
        if self.intake_replicas:
            names += ["nginx-webhook", *(f"intake-{i}" for i in range(self.intake_replicas))]
        for name in names:
            self.ports[name] = self.fixed_ports.get(name) or self.pick_port()
        # Before anything runs: a taken port is said at once, not as a timeout later on.
        for name, port in self.fixed_ports.items():
            if name in self.ports and port_in_use(self.host, port):
                raise TopologyError(
                    f"port {port} ({name}) on {self.host} is already in use by another program"
                )
        self.progress("Redis (embedded)")
        try:
            self.redis = EmbeddedRedis(data_dir=self.workdir / "redis").start()
        except EmbeddedRedisError as error:
            raise TopologyError(f"Redis: {error}") from None
        if self.fork:
            self.progress("imports shared by the components")
            preload()
        self.progress("reference modules, fake OAuth provider and fake Telegram")
        if self.fake_oauth:
            self._spawn("fake-oauth", [], ready="/healthz")
        self._spawn("reference-auth", ["--public-url", self.auth_url], ready="/healthz")
        self._spawn("reference-main", [], ready="/healthz")
        telegram_args = ["--rate-limits"] if self.fake_telegram_rate_limits else []
        if self.intake_replicas:
            # Like the Bot API server with --local: it may post to a plain-http loopback webhook.
            telegram_args.append("--local")
        # Telegram never hands out an update id twice, and Bot Logic answers a repeated one with
        # the first answer for a day: a restarted fake must not begin at 1 again (issue 9). Ids
        # from the clock in ms stay above the last run's unless it made 1000 updates a second.
        telegram_args += ["--first-update-id", str(int(time.time() * 1000))]
        self._spawn("fake-telegram", telegram_args, ready="/healthz")
        self.progress(f"Bot Logic x{self.logic_replicas}")
        for index in range(self.logic_replicas):
            self.start_logic(index)
        if self.nginx:
            # Once the replicas answer: nginx marks a replica that refused a connection failed
            # for `fail_timeout` (2 s, deploy/nginx.conf), and with every one failed it answers
            # 502, its own /healthz included, until then.
            self.wait_ready()
            self.progress("nginx")
            self._start_nginx()
        if self.webhook:
            # Otherwise they start when a test switches to webhook mode (`start_intake`): beside
            # a polling client they would wait for its lease, and one holding it would keep the
            # client from polling.
            self.progress(f"webhook intake x{self.intake_replicas}")
            for index in range(self.intake_replicas):
                self.start_intake(index)
        self.wait_ready()
        if self.client and not self.webhook:
            # Once everything it talks to answers, so it gets the lease at its first ask.
            self.progress("Telegram Client")
            self.start_client()
        if self.webhook:
            self.set_webhook()
        elif self.client:
            # Issue 4: "ready" means a message sent now is answered, so wait until the client
            # polls (it has no port; its first import-heavy seconds used to pass unseen).
            self.wait_polling()

    def component_env(self) -> dict[str, str]:
        assert self.redis is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TGGATE_") or key == "TGGATE_LOG_LEVEL"
        }
        env.update(
            {
                "TGGATE_REDIS_URL": self.redis.url,
                "TGGATE_AUTH_URL": self.auth_url,
                "TGGATE_MAIN_URL": self.main_url,
                "TGGATE_LOGIC_URL": self.logic_url,
                "TGGATE_TELEGRAM_API_URL": self.telegram_url,
                "TGGATE_BOT_TOKEN": self.bot_token,
                "TGGATE_INTERNAL_TOKEN": self.internal_token,
                "TGGATE_REFERENCE_JWT_SECRET": self.jwt_secret,
                "TGGATE_REFERENCE_ADMIN_SECRET": self.admin_secret,
                "TGGATE_TEST_API_SECRET": self.test_api_secret,
                # The fake OAuth provider registers the module's callbacks under this URL.
                "TGGATE_AUTH_PUBLIC_URL": self.auth_url,
                "TGGATE_SESSION_KEYS": self.session_key,
                "TGGATE_WEBHOOK_SECRET": self.webhook_secret,
                # nginx is the one proxy in front of the intake replicas.
                "TGGATE_WEBHOOK_TRUSTED_PROXIES": self.host,
                "TGGATE_DATA_DIR": str(self.workdir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.bulk_notifications:
            env.update(
                {
                    "TGGATE_NOTIFICATION_MODE": "bulk",
                    "TGGATE_MAIN_SERVICE_TOKEN": self.service_token,
                    "TGGATE_REFERENCE_SERVICE_TOKEN": self.service_token,
                }
            )
        if self.fake_oauth:
            oauth = self.url("fake-oauth")
            env.update(
                {
                    "TGGATE_GITHUB_CLIENT_ID": "tggate-demo-github",
                    "TGGATE_GITHUB_CLIENT_SECRET": self.oauth_secret,
                    "TGGATE_GITHUB_URL": f"{oauth}/github",
                    "TGGATE_GITHUB_API_URL": f"{oauth}/github/api",
                    "TGGATE_YANDEX_CLIENT_ID": "tggate-demo-yandex",
                    "TGGATE_YANDEX_CLIENT_SECRET": self.oauth_secret,
                    "TGGATE_YANDEX_OAUTH_URL": f"{oauth}/yandex",
                    "TGGATE_YANDEX_INFO_URL": f"{oauth}/yandex/info",
                }
            )
        env.update(self.extra_env)
        return env

    def _spawn(
        self, name: str, args: list[str], *, ready: str | None, command: str | None = None
    ) -> _Process:
        argv = [sys.executable, "-m", "tggate.cli", command or name]
        if name in self.ports:
            argv += ["--host", self.host, "--port", str(self.ports[name])]
        process = _Process(
            name=name,
            argv=argv + args,
            env=self.component_env(),
            log_path=self.workdir / f"{name}.log",
            ready_url=(self.url(name) + ready) if ready else None,
            forked=self.fork,
        )
        process.start()
        self.processes[name] = process
        self._spawned[name] = (args, ready, command)
        return process

    def _respawn(self, name: str) -> None:
        old = self.processes[name]
        if old.alive:
            old.stopped_on_purpose = True
            old.signal(signal.SIGTERM)
            if not old.wait(10):
                old.signal(signal.SIGKILL)
                old.wait(10)
        if name == "nginx":
            self._start_nginx()
            return
        args, ready, command = self._spawned[name]
        self._spawn(name, args, ready=ready, command=command)

    def _moved_off_a_taken_port(self, process: _Process) -> bool:
        """`free_port` lets its port go before the component binds it (seconds of imports
        later), and another program on the machine may take it meanwhile: then the component
        exits with "address already in use". One whose port was picked here gets another, and
        the components configured with its old address start again with the new one."""
        name = process.name
        if (
            name in self.fixed_ports
            or name not in self.ports
            or self._moves.get(name, 0) >= _PORT_ATTEMPTS
            or "address already in use" not in process.tail(20).lower()
        ):
            return False
        self._moves[name] = self._moves.get(name, 0) + 1
        old = f"{self.host}:{self.ports[name]}"
        self.ports[name] = self.pick_port()
        self.progress(f"{name}: port {old} was taken, moving to {self.ports[name]}")
        self._respawn(name)
        behind_nginx = name.startswith(("logic-", "intake-"))
        for other in list(self.processes.values()):
            if other.name == name:
                continue
            named = any(old in value for value in [*other.argv, *other.env.values()])
            if named or (behind_nginx and other.name == "nginx"):
                self._respawn(other.name)
        return True

    def start_logic(self, index: int) -> None:
        workers = ["--workers", str(self.logic_workers)] if self.logic_workers > 1 else []
        self._spawn(f"logic-{index}", workers, ready="/readyz", command="logic")

    def start_client(self) -> None:
        self.start_named_client("client")

    def start_intake(self, index: int) -> None:
        self._spawn(f"intake-{index}", [], ready="/readyz", command="intake")

    def webhook_command(self, *args: str, secret: str | None = None) -> str:
        """`tggate webhook …` as an operator runs it; its output (TopologyError if it fails)."""
        env = self.component_env()
        env["TGGATE_WEBHOOK_URL"] = self.webhook_url
        if secret is not None:
            env["TGGATE_WEBHOOK_SECRET"] = secret
        done = subprocess.run(
            [sys.executable, "-m", "tggate.cli", "webhook", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise TopologyError(f"tggate webhook {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def set_webhook(self, *, secret: str | None = None) -> str:
        """`tggate webhook set`: Telegram posts updates to nginx from now on."""
        return self.webhook_command("set", secret=secret)

    def delete_webhook(self) -> str:
        """`tggate webhook delete`: back to getUpdates, once the intake's queues are empty."""
        return self.webhook_command("delete")

    def start_named_client(self, name: str) -> None:
        """Start a Telegram Client as `name` (a second one on the same token is a standby)."""
        self._spawn(name, [], ready=None, command="client")

    def _start_nginx(self) -> None:
        nginx = find_nginx()
        assert nginx is not None
        prefix = self.workdir / "nginx"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"        server {self.host}:{self.ports[f'logic-{i}']} max_fails=1 fail_timeout=2s;"
            for i in range(self.logic_replicas)
        )
        config = (
            NGINX_TEMPLATE.read_text("utf-8")
            .replace("{{webhook_server}}", self._webhook_server())
            .replace("{{user}}", "user root;" if os.geteuid() == 0 else "")
            .replace("{{prefix}}", str(prefix))
            .replace("{{upstream_servers}}", servers)
            .replace("{{listen_host}}", self.host)
            .replace("{{listen_port}}", str(self.ports["nginx"]))
        )
        config_path = prefix / "nginx.conf"
        config_path.write_text(config, "utf-8")
        process = _Process(
            name="nginx",
            argv=[nginx, "-p", str(prefix), "-c", str(config_path), "-e", str(prefix / "e.log")],
            env=dict(os.environ),
            log_path=self.workdir / "nginx.log",
            ready_url=self.url("nginx") + "/healthz",
        )
        process.start()
        self.processes["nginx"] = process

    def _webhook_server(self) -> str:
        if not self.intake_replicas:
            return ""
        servers = "\n".join(
            f"        server {self.host}:{self.ports[f'intake-{i}']} max_fails=1 fail_timeout=2s;"
            for i in range(self.intake_replicas)
        )
        return (
            NGINX_WEBHOOK_TEMPLATE.read_text("utf-8")
            .replace("{{intake_servers}}", servers)
            .replace("{{webhook_listen}}", f"{self.host}:{self.ports['nginx-webhook']}")
            .replace("{{webhook_max_body}}", "256k")
        )

    def _check_running(self) -> bool:
        """Any component that exited (and was not stopped on purpose) fails the start at once,
        unless it only lost its picked port to another program: then it moved (see above), and
        the answer is True."""
        moved = False
        for process in list(self.processes.values()):
            if not process.failed:
                continue
            if not self._moved_off_a_taken_port(process):
                raise TopologyError(process.exited())
            moved = True
        return moved

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        # A component that answered is not asked again each round: eight servers importing on two
        # cores answered every other one's probe meanwhile (issue 11, item 7). Held by name and
        # identity: a component that moved to another port is a new process, asked afresh.
        answered: dict[str, _Process] = {}
        while True:
            waiting = []
            for name, process in list(self.processes.items()):
                if not process.ready_url or answered.get(name) is process:
                    continue
                if _http_ok(process.ready_url):
                    answered[name] = process
                else:
                    waiting.append(process)
            if not waiting:
                break
            self._check_running()
            if time.monotonic() > deadline:
                raise TopologyError(f"{waiting[0].name} did not get ready:\n{waiting[0].tail()}")
            time.sleep(0.05)
        # A server that answered, then exited (someone else's server on its port answered).
        if self._check_running():
            self.wait_ready(max(1.0, deadline - time.monotonic()))

    def wait_polling(self, timeout_s: float = 30.0) -> None:
        """Until the fake Telegram has seen a `getUpdates` call (from the Telegram Client)."""
        deadline = time.monotonic() + timeout_s
        stats = urllib.request.Request(
            self.telegram_url + "/_test/stats", headers=self.test_api_headers
        )
        while True:
            try:
                with urllib.request.urlopen(stats, timeout=1.0) as response:
                    calls = json.load(response).get("calls", {})
                if calls.get("getUpdates", 0) > 0:
                    return
            except (OSError, ValueError):
                pass
            self._check_running()
            clients = [p for p in self.processes.values() if p.name.startswith("client")]
            if time.monotonic() > deadline:
                tails = "\n".join(process.tail() for process in clients)
                raise TopologyError(f"the Telegram Client did not start polling:\n{tails}")
            time.sleep(0.05)

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        process.stopped_on_purpose = True
        process.signal(signum)
        process.wait(10)

    def restart(self, name: str) -> None:
        process = self.processes[name]
        if process.alive:
            self.kill(name, signal.SIGTERM)
        process.start()
        if process.ready_url:
            self.wait_ready()

    def kill_redis(self) -> None:
        """SIGKILL the embedded Redis, as a crash does: what its append-only file had not yet
        synced (up to a second, `appendfsync everysec`) is lost (docs/scenarios.md#unavailable)."""
        assert self.redis is not None
        pid = self.redis.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.redis.stop()  # reaps it; nothing left to flush

    def restart_redis(self) -> None:
        """Start the embedded Redis again on the same port and data directory (it replays its
        append-only file); the components reconnect by themselves. Call it from the thread that
        started the topology: the server dies with the thread that started it."""
        assert self.redis is not None
        port = self.redis.port
        self.redis.start()
        if self.redis.port != port:  # it tries another port only when its own is taken
            raise TopologyError(f"Redis could not get its port {port} back")

    def logs(self) -> str:
        """Everything every component logged so far (for assertions on log contents)."""
        return "\n".join(p.tail(10**9) for p in self.processes.values())

    def stop(self, timeout_s: float = 15.0) -> None:
        # The client and the intake replicas first, so they stop fetching (confirming the
        # offset) or finish their updates while Bot Logic is up.
        order = [p for p in self.processes.values() if p.name.startswith(("client", "intake"))]
        order += [p for p in reversed(self.processes.values()) if p not in order]
        for process in order:
            process.signal(signal.SIGTERM)
            if not process.wait(timeout_s):
                process.signal(signal.SIGKILL)
                process.wait(5)
        if self.redis is not None:
            self.redis.stop()
