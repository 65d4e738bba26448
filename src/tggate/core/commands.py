"""Commands: the built-in ones (docs/scenarios.md#commands) and the action table (TOML), and parsing
of a text.

Parsing is shared by the Telegram Client (C4: is this a command we know?) and Bot Logic
(validation of what arrives), so both read the same table.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "BUILTIN_COMMANDS",
    "LOGIN_TYPES",
    "ActionSpec",
    "ArgSpec",
    "CommandTable",
    "CommandTableError",
    "OtherBot",
    "ParsedCommand",
    "Usage",
    "load_command_table",
    "parse_text",
    "usage_line",
    "validate_args",
]

LOGIN_TYPES = ("github", "yandex", "code")

# Longest text we ever accept as a command; Telegram itself caps messages at 4096.
MAX_TEXT = 4096

_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ARG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# Arguments are path segments on the Main module (`/api/courses/{course_id}`): quoting leaves
# "." and ".." as they are, and HTTP clients resolve them, so `/tasks ..` would reach
# `/api/courses/tasks`, another endpoint than the table declares (issue 9, finding 5).
DOT_SEGMENTS = frozenset({".", ".."})

# `/logout all`, `/logout all=true` (docs/scenarios.md#z3); any case, as Telegram users type.
_YES = frozenset({"true", "1", "yes"})
_NO = frozenset({"false", "0", "no"})


class CommandTableError(ValueError):
    """The command table file is missing, malformed or inconsistent."""


@dataclass(frozen=True, slots=True)
class Localized:
    ru: str
    en: str

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.ru


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    description: Localized
    pattern: str = r"^\S{1,200}$"
    required: bool = True

    def accepts(self, value: str) -> bool:
        return value not in DOT_SEGMENTS and re.fullmatch(self.pattern, value) is not None


@dataclass(frozen=True, slots=True)
class ReplySpec:
    """How a 200 answer becomes a reply.

    `template` is formatted with the answer's top-level fields (`{name}`). When `items` names a
    list field ("." for the body itself), `header` is followed by one `item` line per element
    (formatted with that element's fields), or `empty` when the list is empty.
    """

    template: Localized | None = None
    items: str | None = None
    header: Localized | None = None
    item: Localized | None = None
    empty: Localized | None = None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    command: str
    description: Localized
    method: str
    path: str
    args: tuple[ArgSpec, ...] = ()
    reply: ReplySpec = field(default_factory=ReplySpec)

    def usage(self, language: str) -> str:
        names = " ".join(f"<{a.name}>" if a.required else f"[{a.name}]" for a in self.args)
        return f"/{self.command} {names}".rstrip()

    def path_for(self, args: Mapping[str, str]) -> str:
        """The Main module path with the arguments quoted in; ValueError for a dot segment,
        which validation refuses first (`ArgSpec.accepts`): this is the last guard."""
        if any(value in DOT_SEGMENTS for value in args.values()):
            raise ValueError(f"/{self.command}: a path argument is a dot segment")
        return self.path.format_map({name: quote(value, safe="") for name, value in args.items()})


@dataclass(frozen=True, slots=True)
class CommandTable:
    actions: Mapping[str, ActionSpec]

    def knows(self, command: str) -> bool:
        return command in BUILTIN_COMMANDS or command in self.actions


BUILTIN_COMMANDS: Mapping[str, Localized] = {
    "start": Localized("Начать работу с ботом", "Start using the bot"),
    "help": Localized("Что умеет бот", "What the bot can do"),
    "login": Localized(
        "Войти: /login github | yandex | code", "Log in: /login github | yandex | code"
    ),
    "logout": Localized(
        "Выйти (/logout all — на всех устройствах)", "Log out (/logout all — on every device)"
    ),
}


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: str
    args: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Usage:
    """The text names a known command but its arguments are wrong: reply with the usage."""

    command: str
    problem: str


@dataclass(frozen=True, slots=True)
class OtherBot:
    """`/command@name` for another bot in a group: not ours, so no reply at all (not even C5)."""

    username: str


_BUILTIN_USAGE: Mapping[str, str] = {
    "start": "/start",
    "help": "/help",
    "login": "/login github | yandex | code",
    "logout": "/logout [all]",
}


def usage_line(command: str, table: CommandTable, language: str) -> str:
    """How a command is typed: `/course <course_id>`, `/logout [all]`."""
    spec = table.actions.get(command)
    return spec.usage(language) if spec else _BUILTIN_USAGE.get(command, "/help")


def _split_command(text: str) -> tuple[str, str, list[str]] | None:
    """(name, the bot it is addressed to or "", the words after it), or None: not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) > MAX_TEXT:
        return None
    head, *rest = stripped.split()
    name, _, addressee = head[1:].partition("@")  # "/login@tggate_bot" in groups
    name = name.lower()
    if not _COMMAND_NAME.match(name):
        return None
    return name, addressee, rest


def _split_args(words: list[str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    named: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep and _ARG_NAME.match(key.lower()):
            named[key.lower()] = value
        else:
            positional.append(word)
    return positional, named


def parse_text(
    text: str, table: CommandTable, *, bot_username: str | None = None
) -> ParsedCommand | Usage | OtherBot | None:
    """Turn a person's text into a command, a usage complaint, `OtherBot` (addressed to another
    bot than `bot_username`), or None (not a command: C5).

    `bot_username` is this bot's (getMe); None accepts any addressee."""
    split = _split_command(text)
    if split is None:
        return None
    name, addressee, words = split
    if addressee and bot_username is not None and addressee.lower() != bot_username.lower():
        return OtherBot(addressee)
    if not table.knows(name):
        return None
    positional, named = _split_args(words)
    if name in ("start", "help"):
        return ParsedCommand(name, {})
    if name == "login":
        if len(positional) > 1:
            return Usage(name, "too many arguments")
        if positional:
            named.setdefault("type", positional[0])
        return _login(named)
    if name == "logout":
        if len(positional) > 1 or (positional and positional[0].lower() != "all"):
            return Usage(name, "expected 'all' or nothing")
        if positional:
            named.setdefault("all", "true")
        return _logout(named)
    return check_action_args(table.actions[name], positional, named)


def _login(args: Mapping[str, str]) -> ParsedCommand | Usage:
    """`/login [type]`, the type in any case (`/login GITHUB`)."""
    if set(args) - {"type"}:
        return Usage("login", "unknown argument")
    login_type = args.get("type")
    if login_type is None:
        return ParsedCommand("login", {})
    if login_type.lower() not in LOGIN_TYPES:
        return Usage("login", f"type={login_type}")
    return ParsedCommand("login", {"type": login_type.lower()})


def _logout(args: Mapping[str, str]) -> ParsedCommand | Usage:
    """`/logout [all]`: `all`, `ALL` and `all=true` end every session; anything else is a usage
    complaint, never a silent local logout (issue 9, finding 6)."""
    if set(args) - {"all"}:
        return Usage("logout", "unknown argument")
    everywhere = args.get("all", "false").lower()
    if everywhere not in _YES | _NO:
        return Usage("logout", f"all={args['all']}")
    return ParsedCommand("logout", {"all": "true"} if everywhere in _YES else {})


def check_action_args(
    spec: ActionSpec, positional: list[str], named: Mapping[str, str]
) -> ParsedCommand | Usage:
    """Match positional and named words to the action's arguments, validating each."""
    values: dict[str, str] = {}
    leftover = list(positional)
    for arg in spec.args:
        if arg.name in named:
            values[arg.name] = named[arg.name]
        elif leftover:
            values[arg.name] = leftover.pop(0)
    unknown = set(named) - {a.name for a in spec.args}
    if leftover or unknown:
        return Usage(spec.command, "too many arguments")
    for arg in spec.args:
        value = values.get(arg.name)
        if value is None:
            if arg.required:
                return Usage(spec.command, f"missing {arg.name}")
            continue
        if not arg.accepts(value):
            return Usage(spec.command, f"bad {arg.name}")
    return ParsedCommand(spec.command, values)


def validate_args(
    command: str, args: Mapping[str, str], table: CommandTable
) -> ParsedCommand | Usage:
    """Validate arguments that arrive already named (docs/contract.md#bot-logic), by the same
    rules as `parse_text`."""
    if command in ("start", "help"):
        return ParsedCommand(command, {})
    if command == "login":
        return _login(args)
    if command == "logout":
        return _logout(args)
    return check_action_args(table.actions[command], [], args)


# ---- loading the table ----


def _localized(raw: Any, where: str) -> Localized:
    if isinstance(raw, str):
        return Localized(raw, raw)
    if isinstance(raw, dict) and isinstance(raw.get("ru"), str) and isinstance(raw.get("en"), str):
        return Localized(raw["ru"], raw["en"])
    raise CommandTableError(f"{where}: expected a string or {{ru = ..., en = ...}}")


def _optional_localized(raw: Any, where: str) -> Localized | None:
    return None if raw is None else _localized(raw, where)


def _action(raw: Any, index: int) -> ActionSpec:
    where = f"actions[{index}]"
    if not isinstance(raw, dict):
        raise CommandTableError(f"{where}: expected a table")
    command = raw.get("command")
    if not isinstance(command, str) or not _COMMAND_NAME.match(command):
        raise CommandTableError(f"{where}.command: expected a lower-case name like 'courses'")
    where = f"action '{command}'"
    if command in BUILTIN_COMMANDS:
        raise CommandTableError(f"{where}: the name is a built-in command")
    method = str(raw.get("method", "GET")).upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise CommandTableError(f"{where}.method: {method!r} is not an HTTP method")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise CommandTableError(f"{where}.path: expected a path starting with '/'")
    args = []
    for j, arg in enumerate(raw.get("args", [])):
        name = arg.get("name") if isinstance(arg, dict) else None
        if not isinstance(name, str) or not _ARG_NAME.match(name):
            raise CommandTableError(f"{where}.args[{j}].name: expected a lower-case name")
        pattern = arg.get("pattern", ArgSpec.__dataclass_fields__["pattern"].default)
        try:
            re.compile(pattern)
        except re.error as error:
            raise CommandTableError(f"{where}.args[{j}].pattern: {error}") from None
        args.append(
            ArgSpec(
                name=name,
                description=_localized(arg.get("description", name), f"{where}.args[{j}]"),
                pattern=pattern,
                required=bool(arg.get("required", True)),
            )
        )
    for placeholder in re.findall(r"{(\w+)}", path):
        if placeholder not in {a.name for a in args}:
            raise CommandTableError(f"{where}.path: {{{placeholder}}} is not an argument")
    reply_raw = raw.get("reply", {})
    if not isinstance(reply_raw, dict):
        raise CommandTableError(f"{where}.reply: expected a table")
    reply = ReplySpec(
        template=_optional_localized(reply_raw.get("template"), f"{where}.reply.template"),
        items=reply_raw.get("items"),
        header=_optional_localized(reply_raw.get("header"), f"{where}.reply.header"),
        item=_optional_localized(reply_raw.get("item"), f"{where}.reply.item"),
        empty=_optional_localized(reply_raw.get("empty"), f"{where}.reply.empty"),
    )
    return ActionSpec(
        command=command,
        description=_localized(raw.get("description", command), f"{where}.description"),
        method=method,
        path=path,
        args=tuple(args),
        reply=reply,
    )


def parse_command_table(text: str, *, source: str = "commands.toml") -> CommandTable:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CommandTableError(f"{source}: {error}") from None
    actions: dict[str, ActionSpec] = {}
    for index, entry in enumerate(raw.get("actions", [])):
        spec = _action(entry, index)
        if spec.command in actions:
            raise CommandTableError(f"{source}: action '{spec.command}' is declared twice")
        actions[spec.command] = spec
    return CommandTable(actions=actions)


def load_command_table(path: Path | None = None) -> CommandTable:
    """The table at `path`, or the bundled one that fits the reference Main module."""
    if path is None:
        text = resources.files("tggate").joinpath("commands.toml").read_text("utf-8")
        return parse_command_table(text, source="bundled commands.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise CommandTableError(f"{path}: {error.strerror}") from None
    return parse_command_table(text, source=str(path))
