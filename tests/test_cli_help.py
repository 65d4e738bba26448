"""`tggate <command> --help` explains itself: every option says what it does and its default,
and each product command names the variables it reads, the required ones first."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tggate.cli import build_parser
from tggate.settings import Settings, variables

PARSER = build_parser()
COMMANDS: dict[str, argparse.ArgumentParser] = next(
    action.choices
    for action in PARSER._actions  # argparse has no public way to list sub-commands
    if isinstance(action, argparse._SubParsersAction)
)
PRODUCT_COMMANDS = ("logic", "client", "intake", "webhook")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_sandbox_commands_are_there_too() -> None:
    # The checkout installs both distributions: the sandbox's options are checked below as well.
    assert {"demo", "reference-auth", "fake-telegram", "bench"} <= COMMANDS.keys()


def test_tggate_help_lists_every_command_with_what_it_runs() -> None:
    listed = PARSER.format_help().split("positional arguments:")[1].split("options:")[0]
    # A command's name is indented by 4, its help follows on the same or the next lines.
    entries = dict(re.findall(r"^ {4}(\S+)(.*?)(?=^ {4}\S|\Z)", listed, re.MULTILINE | re.DOTALL))
    assert entries.keys() == COMMANDS.keys()
    for name, help_text in entries.items():
        assert len(_flat(help_text)) > 10, f"tggate --help says nothing about {name}"
    assert "default" not in listed


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_that_shows_its_default(name: str) -> None:
    command = COMMANDS[name]
    printed = _flat(command.format_help())
    assert command.description, f"tggate {name} has no description"
    formatter = command._get_formatter()  # the text --help prints for one option
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"tggate {name} {action.dest}: no help"
        shown = _flat(formatter._expand_help(action))
        assert "default" in shown, f"tggate {name} {action.dest}: the help hides the default"
        assert shown in printed


@pytest.mark.parametrize("name", PRODUCT_COMMANDS)
def test_a_product_command_names_the_variables_it_reads_required_first(name: str) -> None:
    epilog = COMMANDS[name].format_help().split("required environment:")
    read = [variable for variable in variables(Settings) if name in variable.used_by]
    required = [variable.name for variable in read if name in variable.required_by]
    assert required, f"tggate {name} reads no required variable?"
    assert len(epilog) == 2, f"tggate {name} --help has no required environment"
    required_part, other_part = epilog[1].split("other environment")
    assert [line.strip() for line in required_part.splitlines() if line.startswith("  T")] == (
        required
    )
    for variable in read:
        if variable.name not in required:
            assert f"{variable.name}  (default: {variable.default})" in other_part


def _environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    return {**env, **values}


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        (name, variable.name)
        for name in PRODUCT_COMMANDS
        for variable in variables(Settings)
        if name in variable.required_by
    ],
)
def test_a_required_variable_is_required_indeed(tmp_path: Path, name: str, missing: str) -> None:
    """What --help calls required is what start-up refuses to go without."""
    present = {
        variable.name: "required-value-for-the-help-test"
        for variable in variables(Settings)
        if name in variable.required_by and variable.name != missing
    }
    result = subprocess.run(
        [sys.executable, "-m", "tggate.cli", name],
        env=_environment(TGGATE_DATA_DIR=str(tmp_path), **present),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"tggate: {missing} is not set")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_no_command_or_an_unknown_one_is_refused_with_the_choices() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tggate.cli", "nonsense"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr
    assert "'logic'" in result.stderr and "'demo'" in result.stderr
