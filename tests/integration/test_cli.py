"""The console commands as a user runs them: a URL printed, a clean stop, clear setting errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tggate_sandbox.topology import free_port


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    env.update(values)
    return env


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tggate.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout_s: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            return line.strip()
        if process.poll() is not None:
            break
    raise AssertionError(f"no output; stderr: {process.stderr.read() if process.stderr else ''}")


@pytest.mark.parametrize(
    ("command", "probe", "signum"),
    [
        ("reference-auth", "/healthz", signal.SIGTERM),
        ("reference-main", "/healthz", signal.SIGINT),
        ("fake-telegram", "/healthz", signal.SIGTERM),
        ("logic", "/readyz", signal.SIGTERM),
    ],
)
def test_each_server_prints_its_url_and_stops_cleanly(
    tmp_path: Path, command: str, probe: str, signum: int
) -> None:
    port = free_port()
    env = _env(
        TGGATE_INTERNAL_TOKEN="cli-test-internal-token",
        TGGATE_BOT_TOKEN="123:cli-test",
        TGGATE_REFERENCE_JWT_SECRET="cli-test-reference-jwt-secret-0123456789",
        TGGATE_DATA_DIR=str(tmp_path / "var"),
    )
    process = _start([command, "--port", str(port)], env, tmp_path)
    try:
        line = _first_line(process)
        assert line.endswith(f"listening on http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=10).status_code == 200
        process.send_signal(signum)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    if command == "logic":  # the embedded Redis kept its data in the data folder, appendonly
        redis_dir = tmp_path / "var" / "redis"
        assert any(p.name.startswith("appendonly") for p in redis_dir.rglob("*"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "TGGATE_INTERNAL_TOKEN is not set"),
        (
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_HTTP_TIMEOUT_S": "soon"},
            "TGGATE_HTTP_TIMEOUT_S: Input should be a valid number",
        ),
        (
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_AUTH_URL": "not a url"},
            "TGGATE_AUTH_URL:",
        ),
        (
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_SESSION_KEYS": "short"},
            "TGGATE_SESSION_KEYS: a key is not a Fernet key",
        ),
        (
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_COMMANDS_FILE": "/nonexistent.toml"},
            "/nonexistent.toml",
        ),
    ],
)
def test_a_bad_setting_stops_startup_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tggate.cli", "logic", "--port", str(free_port())],
        env=_env(TGGATE_DATA_DIR=str(tmp_path), **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_a_second_logic_on_the_same_embedded_redis_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    """Issue 9, finding 10: two `tggate logic` without TGGATE_REDIS_URL each started a Redis on
    the same append-only file. The embedded default serves one process; a second is refused."""
    env = _env(TGGATE_INTERNAL_TOKEN="cli-test-internal-token", TGGATE_DATA_DIR=str(tmp_path))
    first = _start(["logic", "--port", str(free_port())], env, tmp_path)
    second: subprocess.Popen[str] | None = None
    try:
        assert "listening on" in _first_line(first)
        second = _start(["logic", "--port", str(free_port())], env, tmp_path)
        try:
            _, errors = second.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            second.kill()
            _, errors = second.communicate()
            raise AssertionError(f"the second Bot Logic kept running: {errors}") from None
        assert second.returncode == 2
        (line,) = errors.strip().splitlines()
        assert line == (
            f"tggate: embedded Redis: another process (pid {first.pid}) runs the embedded Redis "
            f"in {tmp_path / 'redis'}: it serves one process only; set TGGATE_REDIS_URL to a "
            "Redis several processes share, or give each its own TGGATE_DATA_DIR"
        )
        assert first.poll() is None  # the first one is untouched
    finally:
        for process in (first, second):
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
