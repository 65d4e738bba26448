"""What the benchmarks share: process probes (CPU, peak memory), percentiles, the fake Telegram's
test API, sessions written straight into Redis, result files and machine facts.

Nothing here asserts a figure: benchmarks measure and write what they saw.
"""

from __future__ import annotations

import http.client
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from tggate.adapters.redis_store import DEFAULT_BUCKETS, RedisKeys, SessionCodec
from tggate.adapters.token_cipher import TokenCipher
from tggate.core.session import Anonymous, Authorized, LoginPrompt, Session, Status
from tggate.core.subjects import token_subject
from tggate_sandbox.reference.auth.tokens import TokenCodec
from tggate_sandbox.topology import Topology, TopologyError, find_nginx

__all__ = [
    "RESULTS_DIR",
    "Figure",
    "ProcessSet",
    "Profiler",
    "Result",
    "TelegramTestApi",
    "busy_percent",
    "cipher_of",
    "cpu_jiffies",
    "index_size",
    "machine_info",
    "mint_access_tokens",
    "percentiles",
    "seed_anonymous",
    "seed_authorized",
    "started_topology",
    "topology_processes",
    "used_memory",
    "wait_for_quiet",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_KEY_PREFIX = "tggate"
# A connection idle this long is not used again: uvicorn closes idle ones after 5 s.
_IDLE_REUSE_S = 2.0


# ---- results ----


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of the printed table (and of `summary.json`)."""

    name: str
    value: float | int | str
    unit: str = ""

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(slots=True)
class Result:
    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: float | int | str, unit: str = "") -> None:
        if isinstance(value, float):
            value = round(value, 3 if abs(value) < 100 else 1)
        self.figures.append(Figure(name, value, unit))

    def as_json(self) -> dict[str, object]:
        return {
            "benchmark": self.name,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(self.seconds, 1),
            "machine": machine_info(),
            "figures": [f.as_json() for f in self.figures],
            "details": self.details,
        }


def percentiles(values: Sequence[float], points: Iterable[int] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (p50, p95, p99 …) of `values`, plus max and count."""
    ordered = sorted(values)
    if not ordered:
        return {}
    found: dict[str, float] = {}
    for point in points:
        rank = max(1, -(-point * len(ordered) // 100))  # ceil without floats
        found[f"p{point}"] = ordered[rank - 1]
    found["max"] = ordered[-1]
    found["mean"] = sum(ordered) / len(ordered)
    found["count"] = len(ordered)
    return found


def machine_info() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _version([find_nginx() or "nginx", "-v"]),
        "redis": _redis_version(),
    }


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + done.stderr else ""


def _redis_version() -> str:
    from tggate.adapters.embedded_redis import find_redis_server

    try:
        return _version([str(find_redis_server()), "--version"])
    except Exception:
        return "unknown"


# ---- processes: CPU seconds and peak memory from /proc ----


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces) start after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(slots=True)
class ProcessSet:
    """Named processes (a name may cover a process and its children, like nginx's workers)."""

    pids: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, pid: int | None, *, with_children: bool = False) -> None:
        if pid is None:
            return
        self.pids[name] = [pid, *(_children(pid) if with_children else [])]

    def cpu(self) -> dict[str, float]:
        return {name: sum(_cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def peak_rss_mib(self) -> dict[str, float]:
        """VmHWM (peak resident set) per name, summed over its processes."""
        return {
            name: round(sum(_status_kb(p, "VmHWM") for p in pids) / 1024, 1)
            for name, pids in self.pids.items()
        }

    def rss_mib(self) -> dict[str, float]:
        return {
            name: round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1)
            for name, pids in self.pids.items()
        }


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat.

    Busy is user + nice + system: the time processes used. Interrupt and softirq time (loopback
    networking is much of it) and steal are charged to no process, so they are left out."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[0] + values[1] + values[2], sum(values[:8])


def busy_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100 * busy / total, 1) if total else 0.0


def wait_for_quiet(*, below_pct: float = 15.0, within_s: float = 120.0) -> float:
    """Wait (at most `within_s`) until the machine is nearly idle for a second; the last
    busy share seen. Other work on the machine (a test suite) would skew every figure."""
    deadline = time.monotonic() + within_s
    while True:
        before = cpu_jiffies()
        time.sleep(1.0)
        busy = busy_percent(before, cpu_jiffies())
        if busy < below_pct or time.monotonic() > deadline:
            return busy


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}


def topology_processes(topology: Topology, names: Iterable[str] | None = None) -> ProcessSet:
    """Every component process of the topology (nginx with its workers, Redis included)."""
    found = ProcessSet()
    for name, process in topology.processes.items():
        if names is not None and name not in names:
            continue
        if process.popen is not None and process.popen.poll() is None:
            found.add(name, process.popen.pid, with_children=name == "nginx")
    if topology.redis is not None and (names is None or "redis" in names):
        found.add("redis", topology.redis.pid)
    return found


# ---- profiles: py-spy attached to a running process ----


@dataclass(slots=True)
class Profiler:
    """`py-spy record` attached to one process while a phase runs (`with profiler.recording()`).

    py-spy samples only while the process runs Python (idle event-loop waits are left out), so
    the shares are shares of the process's CPU. `top()` reads the raw collapsed stacks back."""

    name: str  # the process's, as in `ProcessSet`
    pid: int
    output: Path
    rate: int = 250
    _process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy", path=str(Path(sys.executable).parent)) is not None

    @contextmanager
    def recording(self) -> Iterator[None]:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        argv = [py_spy, "record", "--pid", str(self.pid), "--format", "raw", "--function"]
        argv += ["--rate", str(self.rate), "--output", str(self.output)]
        self.output.parent.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        time.sleep(0.5)  # attached before the phase starts
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def stacks(self) -> list[tuple[list[str], int]]:
        found = []
        try:
            lines = self.output.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return []
        for line in lines:
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                found.append((stack.split(";"), int(count)))
        return found

    def top(self, count: int = 20) -> dict[str, Any]:
        """The functions most often on the stack (inclusive) and at its top (self), as shares
        of the samples; a function is named as py-spy names a frame: "name (module.py:line)"."""
        stacks = self.stacks()
        total = sum(n for _, n in stacks) or 1
        inclusive: dict[str, int] = {}
        own: dict[str, int] = {}
        for frames, n in stacks:
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + n
            own[frames[-1]] = own.get(frames[-1], 0) + n

        def ranked(counts: Mapping[str, int]) -> list[dict[str, object]]:
            # Frames on (nearly) every stack are the process's entry and its event loop.
            useful = [(f, n) for f, n in counts.items() if n < 0.99 * total]
            best = sorted(useful, key=lambda item: -item[1])[:count]
            return [{"function": f, "share_pct": round(100 * n / total, 1)} for f, n in best]

        return {"samples": total, "inclusive": ranked(inclusive), "self": ranked(own)}


# ---- the topology ----

# Timers far apart: a benchmark that wants a cycle calls it (or sets its own interval), so the
# command figures are not mixed with background ticks over every authorized chat.
QUIET_TIMERS = {
    "TGGATE_LOGIN_CYCLE_INTERVAL_S": "600",
    "TGGATE_NOTIFICATION_CYCLE_INTERVAL_S": "600",
}


@contextmanager
def started_topology(name: str, **options: Any) -> Iterator[Topology]:
    """A topology in a temporary folder, stopped and removed afterwards."""
    if find_nginx() is None and options.get("nginx", True):
        raise TopologyError("nginx is not installed (apt-get install nginx)")
    workdir = Path(tempfile.mkdtemp(prefix=f"tggate-bench-{name}-"))
    env = dict(QUIET_TIMERS)
    env.update(options.pop("extra_env", {}))
    topology = Topology(workdir=workdir, extra_env=env, **options)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---- the fake Telegram ----


@dataclass(slots=True)
class TelegramTestApi:
    """The fake Telegram's `/_test` API and the Bot API calls a benchmark needs."""

    base_url: str
    bot_token: str
    headers: Mapping[str, str]  # the test API secret (`topology.test_api_headers`)
    http: httpx.Client = field(init=False)

    # Injections (one a command when paced) on a plain keep-alive connection: httpx spent
    # ~0.3 ms of this driver's CPU a call on the same two cores as the bot measured.
    _injections: http.client.HTTPConnection = field(init=False)
    _injected_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, headers=dict(self.headers), timeout=120)
        url = httpx.URL(self.base_url)
        self._injections = http.client.HTTPConnection(url.host, url.port, timeout=120)

    @classmethod
    def of(cls, topology: Topology) -> TelegramTestApi:
        return cls(topology.telegram_url, topology.bot_token, topology.test_api_headers)

    def inject(self, messages: Sequence[Mapping[str, object]]) -> None:
        body = orjson.dumps({"messages": list(messages)})
        headers = {**self.headers, "Content-Type": "application/json"}
        if time.monotonic() - self._injected_at > _IDLE_REUSE_S:
            self._injections.close()  # opens again on this request
        self._injections.request("POST", "/_test/inject_many", body=body, headers=headers)
        response = self._injections.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"inject_many answered {response.status}: {answer[:500]!r}")
        self._injected_at = time.monotonic()

    def bot_messages_total(self) -> int:
        chats = self.http.get("/_test/chats").json()
        return sum(int(chat["bot_messages"]) for chat in chats)

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get(f"/_test/chats/{chat_id}/messages").json()
        return found

    def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = self.http.get("/_test/stats").json()
        return found

    def drop_pending_updates(self) -> None:
        """deleteWebhook with drop_pending_updates: chats exist, their messages are not news."""
        url = f"/bot{self.bot_token}/deleteWebhook"
        self.http.post(url, json={"drop_pending_updates": True}).raise_for_status()

    def wait_for_bot_messages(self, total: int, *, timeout_s: float, poll_s: float = 0.1) -> int:
        """Poll until the bot has sent `total` messages overall (or the time is up)."""
        deadline = time.monotonic() + timeout_s
        seen = self.bot_messages_total()
        while seen < total and time.monotonic() < deadline:
            time.sleep(poll_s)
            seen = self.bot_messages_total()
        return seen

    def close(self) -> None:
        self.http.close()
        self._injections.close()


# ---- sessions written straight into Redis, in the layout of tggate.adapters.redis_store

# The store's own key builder and session encoding (the bucket count Bot Logic runs with by
# default), so a benchmark writes exactly what Bot Logic would.
KEYS = RedisKeys(_KEY_PREFIX, DEFAULT_BUCKETS)


def _write_chunks(
    client: redis.Redis, chat_ids: Sequence[int], write: Any, *, chunk: int = 5000
) -> None:
    for start in range(0, len(chat_ids), chunk):
        pipe = client.pipeline(transaction=False)
        for chat_id in chat_ids[start : start + chunk]:
            write(pipe, chat_id)
        pipe.execute()


def _write_session(pipe: Any, chat_id: int, session: Session, data: str, ttl_s: int | None) -> None:
    """What WRITE_SESSIONS writes for a new session: the hash, its TTL, the index entry."""
    key = KEYS.session(chat_id)
    bucket = KEYS.bucket(chat_id)
    pipe.delete(key)
    pipe.hset(
        key, mapping={"status": session.status.value, "rev": secrets.token_hex(8), "data": data}
    )
    if ttl_s is not None:
        pipe.pexpire(key, ttl_s * 1000)
    other = Status.ANONYMOUS if session.status is Status.AUTHORIZED else Status.AUTHORIZED
    pipe.sadd(KEYS.index(bucket, session.status), chat_id)
    pipe.srem(KEYS.index(bucket, other), chat_id)


def seed_authorized(
    redis_url: str,
    tokens: Mapping[int, tuple[str, str]],
    *,
    language: str = "en",
    cipher: TokenCipher | None = None,
    subject_index: bool = False,
) -> None:
    """Authorized sessions {chat: (access, refresh)}, as `RedisSessionStore.replace` writes
    them (sealed when `cipher` is given; filed by subject with `subject_index`, as in the bulk
    notification mode)."""
    client = redis.Redis.from_url(redis_url)
    codec = SessionCodec(cipher)

    def write(pipe: Any, chat_id: int) -> None:
        access, refresh = tokens[chat_id]
        session = Authorized(access, refresh, language)
        _write_session(pipe, chat_id, session, codec.encode(session), None)
        # The subject index the store keeps in the bulk notification mode only.
        subject = token_subject(access) if subject_index else None
        if subject is not None:
            pipe.sadd(KEYS.subject(subject), chat_id)

    try:
        _write_chunks(client, list(tokens), write)
    finally:
        client.close()


def seed_anonymous(
    redis_url: str,
    login_tokens: Mapping[int, str],
    *,
    ttl_s: int = 3600,
    language: str = "en",
    public_url: str = "http://127.0.0.1:8081",
    cipher: TokenCipher | None = None,
) -> None:
    """Anonymous sessions {chat: login token} of a pending code login, with their TTL (sealed
    when `cipher` is given)."""
    client = redis.Redis.from_url(redis_url)
    codec = SessionCodec(cipher)

    def write(pipe: Any, chat_id: int) -> None:
        code = f"{secrets.randbelow(1000):03d}-{secrets.randbelow(1000):03d}"
        text = f"Open {public_url}/code and enter the code {code}. The code is valid for 10 min."
        prompt = LoginPrompt(text=text, code=code)
        session = Anonymous(login_tokens[chat_id], "code", prompt, language)
        _write_session(pipe, chat_id, session, codec.encode(session), ttl_s)

    try:
        _write_chunks(client, list(login_tokens), write)
    finally:
        client.close()


def index_size(redis_url: str, status: Status) -> int:
    """How many chat ids the status index holds, over every bucket."""
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for bucket in range(KEYS.buckets):
            pipe.scard(KEYS.index(bucket, status))
        return sum(int(n) for n in pipe.execute())
    finally:
        client.close()


def mint_access_tokens(
    jwt_secret: str, identities: Mapping[int, str], *, ttl_s: int = 24 * 3600
) -> dict[int, tuple[str, str]]:
    """Real JWT pairs of the reference Authorization module, made locally (no refresh record
    at the module: enough for benchmarks whose tokens never expire)."""
    codec = TokenCodec(jwt_secret)
    now = time.time()
    pairs: dict[int, tuple[str, str]] = {}
    for chat_id, identity in identities.items():
        access = codec.encode(
            codec.mint(sub=identity, name=identity, typ="access", now=now, ttl_s=ttl_s)
        )
        refresh = codec.encode(
            codec.mint(sub=identity, name=identity, typ="refresh", now=now, ttl_s=30 * 86400)
        )
        pairs[chat_id] = (access, refresh)
    return pairs


def cipher_of(topology: Topology) -> TokenCipher:
    """The topology's own key: sessions written by a benchmark are sealed as Bot Logic would."""
    return TokenCipher([topology.session_key])


def used_memory(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("memory")
        return int(info["used_memory"])
    finally:
        client.close()


def python() -> str:
    return sys.executable
