"""The configuration of issue 12 as an operator meets it: a bad API file or plan stops the
command with one line naming the key; `check-modules --help` names what it reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.conformance.test_check_modules import cli_env

BAD_API = '[refresh.outcomes]\nrefused = { status = "4XX" }\n'
BAD_API_LINE = "refresh.outcomes.refused.status: '4XX' is not an HTTP status (100-599, or \"4xx\")"


def tggate(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tggate.cli", *args],
        env=cli_env(TGGATE_DATA_DIR=str(tmp_path), **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["logic", "--port", "0"], ["check-modules"]])
def test_a_bad_api_file_stops_the_command_with_one_line(tmp_path: Path, command: list[str]) -> None:
    bad = tmp_path / "auth-api.toml"
    bad.write_text(BAD_API, "utf-8")

    result = tggate(
        *command, tmp_path=tmp_path, TGGATE_INTERNAL_TOKEN="x" * 24, TGGATE_AUTH_API_FILE=str(bad)
    )

    assert result.returncode == 2
    assert result.stderr.strip() == f"tggate: TGGATE_AUTH_API_FILE: {bad}: {BAD_API_LINE}"


def test_a_plan_that_cannot_run_stops_the_check_with_one_line(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[people]]\nidentity = "ann"\ncan = ["me"]\n', "utf-8")

    result = tggate("check-modules", "--plan", str(plan), tmp_path=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tggate: --plan: {plan}: people: nobody can run 'courses'; add it to someone's `can`, "
        "or to [skip] with the reason"
    )


def test_modules_that_do_not_answer_fail_every_check_they_are_in(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens
    result = tggate(
        "check-modules",
        "--auth-url",
        closed,
        "--main-url",
        closed,
        "--hooks",
        closed + "/test",
        tmp_path=tmp_path,
        TGGATE_HTTP_TIMEOUT_S="2",
    )

    assert result.returncode == 1
    assert (
        "FAIL  auth login (github): expected `started`, got no answer (ClientConnectorError)"
        in result.stdout
    )
    assert "        response: none (ClientConnectorError)" in result.stdout


def test_the_help_names_the_settings_it_reads(tmp_path: Path) -> None:
    result = tggate("check-modules", "--help", tmp_path=tmp_path)

    assert result.returncode == 0
    for name in (
        "TGGATE_AUTH_API_FILE",
        "TGGATE_COMMANDS_FILE",
        "TGGATE_CHECK_HOOK_SECRET",
        "TGGATE_CHECK_NOTIFY_SECRET",
        "--hooks",
        "--expired-token",
    ):
        assert name in result.stdout
