"""ruff and mypy (strict on src/) run inside the suite: `uv run pytest` is the whole check."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
LINTED = ("src", "sandbox", "tests", "bench")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = _run("ruff", "format", "--check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_src() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_every_python_the_distributions_admit() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    listed = re.search(r'^SUPPORTED="([^"]*)"$', ci, re.MULTILINE)
    assert listed is not None, "SUPPORTED=… is gone from .ci/run"
    for pyproject in (ROOT / "pyproject.toml", ROOT / "sandbox" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        admitted = SpecifierSet(project["requires-python"])
        versions = [f"3.{minor}" for minor in range(8, 20) if f"3.{minor}.0" in admitted]
        assert listed[1].split() == versions, pyproject
