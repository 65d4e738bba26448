"""`tggate check-modules` with a person finishing the logins: the check prints the code and
waits; the person (here a browser-free simulation) signs in on the reference module's pages,
enters the code and presses Yes or No, and makes notifications, as a person would."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
from pathlib import Path

import httpx
from tests.integration.conformance.modules import reference_modules
from tests.integration.conformance.test_check_modules import JWT, cli_env, options, verdicts
from tests.support.sandbox import ADMIN, TEST_API

from tggate.conformance.run import check_modules

BUNDLED_PLAN = Path(__file__).resolve().parents[3] / "src" / "tggate" / "conformance" / "plan.toml"

LOG_IN = re.compile(r"^WAIT  log in as (\S+) .*enter the code (\S+) on")
REFUSE = re.compile(r"^WAIT  refuse this login .*enter the code (\S+) on")
NOTIFY = re.compile(r"^WAIT  create two notifications for (\S+) ")


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field in the page"
    return html.unescape(found.group(1))


def finish_login(auth_url: str, *, identity: str, code: str, decision: str) -> None:
    """A browser at the module: sign in, enter the code, answer the confirmation."""
    with httpx.Client(base_url=auth_url, timeout=10) as browser:
        page = browser.get("/code")
        browser.post("/signin", data={"csrf": _field(page.text, "csrf"), "identity": identity})
        page = browser.get("/code")
        entered = browser.post("/code", data={"csrf": _field(page.text, "csrf"), "code": code})
        assert entered.status_code == 303, entered.text
        page = browser.get("/confirm")
        form = {
            "csrf": _field(page.text, "csrf"),
            "ticket": _field(page.text, "ticket"),
            "decision": decision,
        }
        assert browser.post("/confirm", data=form).status_code == 200


def test_a_person_finishes_the_logins_the_check_prints(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"  # the bundled plan without [notify]: the person makes them
    plan.write_text(BUNDLED_PLAN.read_text("utf-8").split("[notify]")[0], "utf-8")
    with reference_modules(login_ttl_s=8) as modules:
        # A team keeps an expired access token for the 401 checks (--expired-token).
        minted = httpx.post(
            modules.auth_url + "/test/tokens",
            json={"identity": "alice", "access_ttl_s": 0},
            headers=TEST_API,
        )
        expired = minted.json()["access_token"]
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tggate.cli",
                "check-modules",
                "--auth-url",
                modules.auth_url,
                "--main-url",
                modules.main_url,
                "--plan",
                str(plan),
                "--expired-token",
                expired,
                "--person-timeout",
                "60",
                "--max-wait",
                "15",
            ],
            env=cli_env(TGGATE_DATA_DIR=str(tmp_path)),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        seen: list[str] = []
        acted: list[str] = []
        try:
            for line in process.stdout:
                seen.append(line.rstrip("\n"))
                if found := LOG_IN.match(line):
                    identity, code = found.groups()
                    finish_login(modules.auth_url, identity=identity, code=code, decision="yes")
                    acted.append(f"yes {identity}")
                elif found := REFUSE.match(line):
                    finish_login(modules.auth_url, identity="dima", code=found[1], decision="no")
                    acted.append("no")
                elif found := NOTIFY.match(line):
                    for n in (1, 2):
                        made = httpx.post(
                            modules.main_url + "/notifications",
                            json={"to": found[1], "text": f"made by a person #{n}"},
                            headers=ADMIN,  # an admin of the Main module makes them
                        )
                        assert made.status_code == 201, made.text
                    acted.append(f"notified {found[1]}")
            status = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            stderr = process.stderr.read() if process.stderr else ""
            process.stdout.close()
            if process.stderr:
                process.stderr.close()

    report = "\n".join(seen)
    assert status == 0, report + stderr
    assert acted == ["yes alice", "yes bob", "no", "notified alice", "yes bob"], report
    lines = verdicts(report)
    assert all(line.startswith("PASS") for line in lines), report
    assert "PASS  main me (expired token): 401" in lines
    assert any(line.startswith("PASS  auth login_check expired") for line in lines), report
    assert not JWT.search(report)
    assert expired not in report + stderr


async def test_nobody_at_the_page_fails_after_the_persons_timeout() -> None:
    out = io.StringIO()
    with reference_modules() as modules:
        status = await check_modules(
            options(modules.auth_url, modules.main_url, hooks_url=None, person_timeout_s=1.0),
            out,
        )

    report = out.getvalue()
    assert status == 1
    assert "FAIL  auth login_check granted (alice): still `pending` after 1 s" in report
    assert "WAIT  log in as alice (a student) and confirm (Yes): enter the code" in report
