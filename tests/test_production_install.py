"""A production install is the `tggate` wheel alone: no sandbox, no Playwright, no Authlib.

The wheel is built from this checkout and installed into a fresh venv with exactly the versions
uv.lock pins for `tggate` (exported as a pylock file, so uv installs them from its cache, offline).
Then the product runs there as an operator would run it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_ONLY = {"tggate-sandbox", "playwright", "authlib", "httpx", "pytest"}


@dataclass(frozen=True)
class Install:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        # Nothing of the checkout leaks in: no TGGATE_* setting, no PYTHONPATH, no active venv.
        clean = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TGGATE_", "PYTHON", "VIRTUAL_ENV", "UV_"))
        }
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            env={**clean, **env},
            cwd=self.venv,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if uv is None:
        pytest.fail("uv is not on PATH (.ci/run installs it)")
    return uv


def _call(*args: str) -> None:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    uv, work = _uv(), tmp_path_factory.mktemp("production")
    _call(uv, "build", "--offline", "--package", "tggate", "--wheel", "-o", str(work / "dist"))
    (wheel,) = (work / "dist").glob("tggate-*.whl")
    pins = work / "pylock.toml"
    _call(uv, "export", "--frozen", "--package", "tggate", "--no-dev", "--no-emit-workspace",
          "--format", "pylock.toml", "-o", str(pins), "--quiet")  # fmt: skip
    install = Install(work / "venv")
    _call(uv, "venv", "--quiet", "--python", sys.executable, str(install.venv))
    target = ("--offline", "--quiet", "--python", str(install.python))
    _call(uv, "pip", "install", *target, "-r", str(pins))
    # The wheel's own requirements must be met by those pins, without asking an index.
    _call(uv, "pip", "install", *target, str(wheel))
    _call(uv, "pip", "check", *target)
    yield install


def test_the_wheel_pulls_no_sandbox_code_and_no_playwright(install: Install) -> None:
    names = _installed(install)
    assert "tggate" in names
    assert names.isdisjoint(SANDBOX_ONLY), names & SANDBOX_ONLY
    modules = install.run(
        "python", "-c", "import importlib.util as u; print(u.find_spec('tggate_sandbox'))"
    )
    assert modules.stdout.strip() == "None", modules.stderr


def _installed(install: Install) -> set[str]:
    result = subprocess.run(
        [_uv(), "pip", "list", "--python", str(install.python), "--format", "json", "--offline"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {entry["name"].lower() for entry in json.loads(result.stdout)}


def test_every_product_module_imports_without_the_sandbox(install: Install) -> None:
    script = (
        "import importlib, pkgutil, tggate\n"
        "names = [m.name for m in pkgutil.walk_packages(tggate.__path__, 'tggate.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    result = install.run("python", "-c", script)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 30  # every module of src/tggate, not an empty package


def test_help_lists_the_production_commands_and_where_the_demo_is(install: Install) -> None:
    result = install.run("tggate", "--help")
    assert result.returncode == 0, result.stderr
    commands = _commands_listed(result.stdout)
    assert commands == ["logic", "client", "check-modules", "intake", "webhook"]
    assert "tggate-sandbox" in result.stdout
    assert "uv run tggate demo" in result.stdout


def _commands_listed(help_text: str) -> list[str]:
    """The names under `COMMAND` in `tggate --help`, in order."""
    lines = help_text.split("positional arguments:")[1].split("options:")[0].splitlines()
    # A command's name is indented by 4; its wrapped description by more.
    return [line.split()[0] for line in lines if re.match(r" {4}\S", line)]


def test_the_conformance_check_runs_with_its_bundled_plan_and_api(install: Install) -> None:
    # Nothing listens on the discard port: every check fails, each with its line (issue 12).
    closed = "http://127.0.0.1:9"
    result = install.run(
        "tggate", "check-modules", "--auth-url", closed, "--main-url", closed,
        TGGATE_DATA_DIR=str(install.venv / "var"), TGGATE_HTTP_TIMEOUT_S="2",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  auth login (code): expected `started`, got no answer" in result.stdout


def test_asking_for_the_demo_says_where_it_is(install: Install) -> None:
    result = install.run("tggate", "demo")
    assert result.returncode == 2
    assert "invalid choice: 'demo'" in result.stderr
    assert "tggate-sandbox" in result.stderr


@pytest.mark.parametrize(
    ("command", "env", "expected"),
    [
        (
            "logic",
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_HTTP_TIMEOUT_S": "soon"},
            "tggate: TGGATE_HTTP_TIMEOUT_S: Input should be a valid number",
        ),
        # Past the settings, through bootstrap: the cipher is built from the product's own
        # dependencies (cryptography), which no sandbox package brings in here.
        (
            "logic",
            {"TGGATE_INTERNAL_TOKEN": "x" * 20, "TGGATE_SESSION_KEYS": "short"},
            "tggate: TGGATE_SESSION_KEYS: a key is not a Fernet key",
        ),
        ("client", {"TGGATE_INTERNAL_TOKEN": "x" * 20}, "tggate: TGGATE_BOT_TOKEN is not set"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(
    install: Install, command: str, env: dict[str, str], expected: str
) -> None:
    result = install.run("tggate", command, TGGATE_DATA_DIR=str(install.venv / "var"), **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(expected)
