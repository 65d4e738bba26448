"""The conformance plan: what `tggate check-modules` needs beyond the contract to run it against
a team's modules (docs/integrate.md#the-plan): who logs in, what each may and may not do,
argument values for the actions, and how notifications are made.

Checked against the command table when loaded, so a plan that cannot run stops the check before
any request, with one line naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tggate.core.commands import LOGIN_TYPES, ActionSpec, CommandTable

__all__ = ["Notify", "Persona", "Plan", "PlanError", "load_plan", "parse_plan"]


class PlanError(ValueError):
    """The plan is malformed or does not fit the command table; one line naming the key."""


@dataclass(frozen=True, slots=True)
class Persona:
    identity: str
    role: str  # how the prompt names them: "a student"
    can: tuple[str, ...]
    cannot: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notify:
    """A request to the Main module that creates a notification for a person."""

    method: str
    path: str
    body: Any  # JSON, with "{identity}" and "{text}" in its strings
    secret_header: str | None

    def fill(self, *, identity: str, text: str) -> Any:
        return _fill(self.body, {"{identity}": identity, "{text}": text})


def _fill(value: Any, words: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for word, replacement in words.items():
            value = value.replace(word, replacement)
        return value
    if isinstance(value, list):
        return [_fill(item, words) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, words) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Plan:
    login_types: tuple[str, ...]
    login_with: str
    arguments: Mapping[str, str]
    people: tuple[Persona, ...]
    skip: Mapping[str, str]  # action -> why it is not called
    notify: Notify | None
    source: str

    def args_of(self, action: ActionSpec) -> dict[str, str]:
        return {
            arg.name: self.arguments[arg.name] for arg in action.args if arg.name in self.arguments
        }


_KEYS = ("login_types", "login_with", "arguments", "people", "skip", "notify")


def load_plan(path: Path | None, table: CommandTable) -> Plan:
    """The plan at `path`, or the bundled one for the reference modules."""
    if path is None:
        text = resources.files("tggate.conformance").joinpath("plan.toml").read_text("utf-8")
        return parse_plan(text, table, source="the bundled plan")
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise PlanError(f"{path}: {error.strerror}") from None
    return parse_plan(text, table, source=str(path))


def parse_plan(text: str, table: CommandTable, *, source: str) -> Plan:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PlanError(f"{source}: {error}") from None
    try:
        return _plan(raw, table, source)
    except PlanError as error:
        raise PlanError(f"{source}: {error}") from None


def _plan(raw: dict[str, Any], table: CommandTable, source: str) -> Plan:
    for key in raw:
        if key not in _KEYS:
            raise PlanError(f"{key}: unknown key (the keys: {', '.join(_KEYS)})")
    login_types = raw.get("login_types", list(LOGIN_TYPES))
    if (
        not isinstance(login_types, list)
        or not login_types
        or any(t not in LOGIN_TYPES for t in login_types)
    ):
        raise PlanError(f"login_types: expected a list of {', '.join(LOGIN_TYPES)}")
    login_with = raw.get("login_with", "code" if "code" in login_types else login_types[0])
    if not isinstance(login_with, str) or login_with not in login_types:
        raise PlanError(f"login_with: {login_with!r} is not among login_types")
    arguments = _strings(raw.get("arguments", {}), "arguments")
    skip = _strings(raw.get("skip", {}), "skip")
    people = _people(raw.get("people"), table)
    for command in skip:
        if command not in table.actions:
            raise PlanError(f"skip.{command}: not an action of the command table")
    for command, action in table.actions.items():
        if command in skip:
            continue
        if not any(command in person.can for person in people):
            raise PlanError(
                f"people: nobody can run '{command}'; add it to someone's `can`, or to [skip] "
                "with the reason"
            )
        for arg in action.args:
            value = arguments.get(arg.name)
            if value is None:
                if arg.required:
                    raise PlanError(f"arguments.{arg.name}: '{command}' needs a value for it")
            elif not arg.accepts(value):
                raise PlanError(f"arguments.{arg.name}: {value!r} does not match {arg.pattern}")
    return Plan(
        login_types=tuple(login_types),
        login_with=login_with,
        arguments=arguments,
        people=people,
        skip=skip,
        notify=_notify(raw.get("notify")),
        source=source,
    )


def _strings(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: expected a table [{where}]")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise PlanError(f"{where}.{key}: expected a text")
    return dict(raw)


def _people(raw: Any, table: CommandTable) -> tuple[Persona, ...]:
    if not isinstance(raw, list) or not raw:
        raise PlanError("people: name at least one person ([[people]] identity = …)")
    people: list[Persona] = []
    for index, entry in enumerate(raw):
        where = f"people[{index}]"
        if not isinstance(entry, dict):
            raise PlanError(f"{where}: expected a table [[people]]")
        for key in entry:
            if key not in ("identity", "role", "can", "cannot"):
                raise PlanError(f"{where}.{key}: unknown key (identity, role, can, cannot)")
        identity = entry.get("identity")
        if not isinstance(identity, str) or not identity:
            raise PlanError(f'{where}.identity: expected who logs in, like "alice"')
        role = entry.get("role", identity)
        if not isinstance(role, str):
            raise PlanError(f"{where}.role: expected a text")
        lists = {}
        for key in ("can", "cannot"):
            names = entry.get(key, [])
            if not isinstance(names, list) or any(not isinstance(n, str) for n in names):
                raise PlanError(f"{where}.{key}: expected a list of action names")
            for name in names:
                if name not in table.actions:
                    raise PlanError(f"{where}.{key}: '{name}' is not an action of the table")
            lists[key] = tuple(names)
        both = set(lists["can"]) & set(lists["cannot"])
        if both:
            raise PlanError(f"{where}: '{sorted(both)[0]}' is in both can and cannot")
        people.append(
            Persona(identity=identity, role=role, can=lists["can"], cannot=lists["cannot"])
        )
    return tuple(people)


def _notify(raw: Any) -> Notify | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PlanError("notify: expected a table [notify]")
    for key in raw:
        if key not in ("method", "path", "body", "secret_header"):
            raise PlanError(f"notify.{key}: unknown key (method, path, body, secret_header)")
    method = str(raw.get("method", "POST")).upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise PlanError("notify.method: expected POST, PUT or PATCH")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise PlanError("notify.path: expected a path on the Main module, starting with '/'")
    header = raw.get("secret_header")
    if header is not None and (not isinstance(header, str) or not header):
        raise PlanError("notify.secret_header: expected a header name")
    body = raw.get("body", {})
    if not isinstance(body, dict):
        raise PlanError("notify.body: expected a table")
    return Notify(method=method, path=path, body=body, secret_header=header)
