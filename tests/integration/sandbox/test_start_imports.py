"""What each sandbox server imports to start (issue 11, item 7: `tggate demo` ready in ≤ 6 s).

Eight processes start on two cores, so a module one of them imports but never uses at start is
wall time for all of them. Each case imports what its `tggate` command imports before it serves,
in a fresh interpreter, and names the modules that must not be among them. That the lazily
imported ones still load when needed, the OAuth flow (reference/auth/test_oauth.py) and the
webhook tests of the fake Telegram show.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tggate_sandbox.forked import PRELOADED

CASES = {
    # The demo's supervisor starts everything else: its own imports come before any of it.
    "demo": (["tggate_sandbox.demo"], ["fastapi", "starlette"]),
    # What the demo imports once for the components it forks (tggate_sandbox/forked.py): what
    # they import lazily stays out, aiogram (the client's, once it polls) included.
    "demo, shared imports": (list(PRELOADED), ["aiogram", "aiohttp", "authlib", "httpx"]),
    # Authlib and httpx (and the `rich` httpx's CLI pulls in) load with the first OAuth exchange.
    "reference-auth": (
        ["tggate_sandbox.reference.auth.app", "tggate_sandbox.reference.auth.oauth"],
        ["authlib", "httpx"],
    ),
    # The fake provider reads the Authorization module's configs, never serves its app.
    "fake-oauth": (
        ["tggate_sandbox.fakes.oauth.app"],
        ["authlib", "httpx", "tggate_sandbox.reference.auth.app"],
    ),
    # aiohttp posts webhooks: it loads with the first setWebhook.
    "fake-telegram": (["tggate_sandbox.fakes.telegram.app"], ["aiohttp"]),
}


def _loaded(modules: list[str], unwanted: list[str]) -> list[str]:
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps([n for n in {unwanted!r} if n in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    found: list[str] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("component", sorted(CASES))
def test_a_server_imports_only_what_it_serves_at_start(component: str) -> None:
    modules, unwanted = CASES[component]
    assert _loaded(modules, unwanted) == []
