"""`tggate check-modules` against the reference modules (it passes) and against variants broken
on purpose (each fails with the line that names its fault, the request and the answer)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.conformance.modules import VARIANTS, Variant, reference_modules
from tests.support.sandbox import ADMIN_SECRET, TEST_API_SECRET

from tggate.adapters.auth_api import default_auth_api
from tggate.conformance.plan import load_plan
from tggate.conformance.run import CheckOptions, check_modules
from tggate.core.commands import load_command_table

ROOT = Path(__file__).resolve().parents[3]
# Whatever a report shows of a token must not be the token: nothing JWT-shaped is printed.
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.")


def cli_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    env.update(values)
    return env


def options(auth_url: str, main_url: str, **changes: object) -> CheckOptions:
    table = load_command_table()
    settings: dict[str, object] = {
        "auth_url": auth_url,
        "main_url": main_url,
        "api": default_auth_api(),
        "table": table,
        "plan": load_plan(None, table),
        "hooks_url": auth_url + "/test",
        "hook_secret": TEST_API_SECRET,
        "notify_secret": ADMIN_SECRET,
        "max_wait_s": 15.0,
    }
    settings.update(changes)
    return CheckOptions(**settings)  # type: ignore[arg-type]


def verdicts(report: str) -> list[str]:
    return [line for line in report.splitlines() if line[:4] in ("PASS", "FAIL", "WARN", "SKIP")]


def test_the_reference_modules_pass_every_check(tmp_path: Path) -> None:
    with reference_modules() as modules:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tggate.cli",
                "check-modules",
                "--auth-url",
                modules.auth_url,
                "--main-url",
                modules.main_url,
                "--hooks",
                modules.hooks_url,
                "--max-wait",
                "15",
            ],
            env=cli_env(
                TGGATE_DATA_DIR=str(tmp_path),
                TGGATE_CHECK_HOOK_SECRET=TEST_API_SECRET,
                TGGATE_CHECK_NOTIFY_SECRET=ADMIN_SECRET,
            ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
    lines = verdicts(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines and all(line.startswith("PASS") for line in lines), result.stdout
    # Every kind of check of the issue ran: each login type, each login state, rotation,
    # logout-all, each action with each token, 403s, and both notification calls.
    for expected in (
        "auth login (github)",
        "auth login (yandex)",
        "auth login (code)",
        "auth login_check (just started): answered `pending`",
        "auth login_check granted (alice): two JWTs",
        "auth login_check (the same token again): answered `unknown`",
        "auth login_check denied",
        "auth login_check expired",
        "auth login_check (a token never started): answered `unknown`",
        "auth refresh rotates",
        "auth refresh (the old token later): refused",
        "auth refresh (another session of bob): refused after /logout",
        "main students (alice, a student): 403",
        "main grades (bob, a teacher): 403",
        "main DELETE /notification (exactly those ids)",
    ):
        assert any(expected in line for line in lines), expected
    for command in ("me", "courses", "course", "tasks", "students", "grades"):
        for kind in ("expired", "forged", "missing"):
            assert f"PASS  main {command} ({kind} token): 401" in lines
    assert result.stdout.rstrip().endswith("0 failed, 0 warnings, 0 skipped")
    assert not JWT.search(result.stdout)
    for secret in (TEST_API_SECRET, ADMIN_SECRET):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
async def test_a_broken_module_fails_with_a_precise_line(variant: Variant) -> None:
    out = io.StringIO()
    with reference_modules(broken=variant) as modules:
        status = await check_modules(options(modules.auth_url, modules.main_url), out)

    report = out.getvalue()
    assert status == 1, report
    lines = report.splitlines()
    assert variant.failure in lines, report
    # The failure shows the exact request and the answer, tokens shortened.
    at = lines.index(variant.failure)
    assert lines[at + 1].startswith("        request:  "), report
    assert any(line.startswith("        response: ") for line in lines[at + 1 : at + 8]), report
    assert not JWT.search(report)
