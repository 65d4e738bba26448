"""The sandbox's servers as `tggate` commands (issue 9): they refuse to start without a JWT
secret, and their test APIs are off unless a test API secret turns them on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.support.sandbox import TEST_API, TEST_API_SECRET

from tggate_sandbox.topology import free_port

JWT_SECRET = "cli-test-reference-jwt-secret-0123456789"


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    env.update(TGGATE_DATA_DIR=str(tmp_path), TGGATE_BOT_TOKEN="123:cli-test", **values)
    return env


def _run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tggate.cli", command, "--port", str(free_port())],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["reference-auth", "reference-main"])
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "TGGATE_REFERENCE_JWT_SECRET is not set"),
        ({"TGGATE_REFERENCE_JWT_SECRET": "short"}, "TGGATE_REFERENCE_JWT_SECRET:"),
        (
            {"TGGATE_REFERENCE_JWT_SECRET": JWT_SECRET, "TGGATE_TEST_API_SECRET": "short"},
            "TGGATE_TEST_API_SECRET:",
        ),
        (
            {"TGGATE_REFERENCE_JWT_SECRET": JWT_SECRET, "TGGATE_REFERENCE_ADMIN_SECRET": "pw"},
            "TGGATE_REFERENCE_ADMIN_SECRET:",
        ),
    ],
)
def test_a_reference_module_refuses_to_start_without_a_good_secret(
    tmp_path: Path, command: str, env: dict[str, str], expected: str
) -> None:
    result = _run(command, _env(tmp_path, **env), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tggate: ") and expected in lines[0]
    if "short" in env.values() or "pw" in env.values():
        assert "at least 32 bytes" in lines[0]


@contextmanager
def serving(command: str, env: dict[str, str], cwd: Path) -> Iterator[tuple[str, Path]]:
    """The command running on a free port: its URL, and the file its log goes to."""
    port = free_port()
    log = cwd / f"{command}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tggate.cli", command, "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield url, log
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.parametrize(
    ("command", "test_endpoint"),
    [
        ("reference-auth", "/test/stats"),
        ("reference-main", "/test/stats"),
        ("fake-telegram", "/_test/stats"),
        ("fake-oauth", "/_test/stats"),
    ],
)
def test_a_server_has_no_test_api_unless_a_secret_turns_it_on(
    tmp_path: Path, command: str, test_endpoint: str
) -> None:
    env = _env(
        tmp_path,
        TGGATE_REFERENCE_JWT_SECRET=JWT_SECRET,
        TGGATE_GITHUB_CLIENT_ID="gh",
        TGGATE_GITHUB_CLIENT_SECRET="gh-secret",
    )
    with serving(command, env, tmp_path) as (url, _):
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
        assert httpx.get(url + test_endpoint, headers=TEST_API, timeout=10).status_code == 404

    with serving(command, {**env, "TGGATE_TEST_API_SECRET": TEST_API_SECRET}, tmp_path) as (
        url,
        log,
    ):
        assert httpx.get(url + test_endpoint, timeout=10).status_code == 401
        assert httpx.get(url + test_endpoint, headers=TEST_API, timeout=10).status_code == 200
    assert TEST_API_SECRET not in log.read_text()


def test_the_reference_auth_module_warns_loudly_about_its_demo_sign_in(tmp_path: Path) -> None:
    env = _env(tmp_path, TGGATE_REFERENCE_JWT_SECRET=JWT_SECRET)
    with serving("reference-auth", env, tmp_path) as (url, log):
        assert 'id="demo-warning"' in httpx.get(url + "/code", timeout=10).text
        assert "DEMO SIGN-IN IS ON" in log.read_text()

    quiet = {**env, "TGGATE_REFERENCE_DEMO_SIGN_IN": "false"}
    with serving("reference-auth", quiet, tmp_path) as (url, log):
        assert 'id="demo-warning"' not in httpx.get(url + "/code", timeout=10).text
    assert "DEMO SIGN-IN" not in log.read_text()
