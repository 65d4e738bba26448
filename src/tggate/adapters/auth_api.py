"""The Authorization module's API from configuration: paths, methods, where values sit, which
answer means what (TGGATE_AUTH_API_FILE; docs/integrate.md#the-authorization-modules-api).

The bundled `auth_api.toml` is exactly today's contract (docs/contract.md); a team's file holds
only what differs and is laid over it key by key (`false` leaves an optional value or outcome
out). Both the adapter (`auth_http.py`) and `tggate check-modules` build requests and read
answers through the `AuthApi` made here, so what the check approves is what Bot Logic reads.
A bad file is one `AuthApiError` line naming the key.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from tggate.adapters.json_pointer import JsonPointer, JsonPointerError

__all__ = [
    "CALLS",
    "AnswerKind",
    "AuthApi",
    "AuthApiError",
    "Call",
    "default_auth_api",
    "load_auth_api",
    "parse_auth_api",
]

DEFAULT_SOURCE: Final = "docs/openapi/auth.yaml"


class AuthApiError(ValueError):
    """The API description is malformed; the message is one line naming the key."""


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """The names one call knows: what tggate sends, what it reads, which answers it tells apart.
    The first tuple of each pair is required, the second optional (`false` leaves it out)."""

    request: tuple[tuple[str, ...], tuple[str, ...]]
    response: tuple[tuple[str, ...], tuple[str, ...]]
    outcomes: tuple[tuple[str, ...], tuple[str, ...]]

    def names(self, part: str) -> tuple[str, ...]:
        required, optional = getattr(self, part)
        return (*required, *optional)


# The four calls of docs/contract.md#the-authorization-module, in their steps' order.
CALLS: Final[Mapping[str, _Vocabulary]] = {
    "login": _Vocabulary(
        request=(("login_token",), ("type", "chat_id", "language", "telegram_user")),
        response=(("text",), ("url", "code", "expires_in")),
        outcomes=(("started",), ()),
    ),
    "login_check": _Vocabulary(
        request=(("login_token",), ()),
        response=(("access_token", "refresh_token"), ()),
        outcomes=(("granted",), ("pending", "denied", "unknown", "expired")),
    ),
    "refresh": _Vocabulary(
        request=(("refresh_token",), ()),
        response=(("access_token", "refresh_token"), ()),
        outcomes=(("refreshed", "refused"), ()),
    ),
    "logout": _Vocabulary(
        request=(("refresh_token",), ()),
        response=((), ()),
        outcomes=(("done",), ()),
    ),
}
_CALL_KEYS = ("method", "path", "state", "request", "constants", "response", "outcomes", "types")
_TABLES = ("request", "constants", "response", "outcomes", "types")
_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_LOGIN_TYPES = ("github", "yandex", "code")
_STATUS_CLASS = re.compile(r"[1-5]xx")

Json = Any  # a value as json.loads returns it


def _same(found: Json, wanted: Json) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return found is wanted
    if isinstance(found, int | float) and isinstance(wanted, int | float):
        return found == wanted
    return type(found) is type(wanted) and bool(found == wanted)


@dataclass(frozen=True, slots=True)
class AnswerKind:
    """One kind of answer, told apart by its status and, optionally, a field (and its value)."""

    name: str
    statuses: frozenset[int]
    at: JsonPointer | None = None
    value: Json = None  # None with `at`: the field is there, whatever it holds

    def matches(self, status: int, document: Json) -> bool:
        if status not in self.statuses:
            return False
        if self.at is None:
            return True
        found, value = self.at.find(document)
        return found and (self.value is None or _same(value, self.value))


@dataclass(frozen=True, slots=True)
class Call:
    """One call of the module: how its request is built and how its answer is read."""

    name: str
    method: str
    path: str
    request: Mapping[str, JsonPointer]
    constants: Mapping[JsonPointer, Json]
    response: Mapping[str, JsonPointer]
    outcomes: tuple[AnswerKind, ...]  # in the order they are tried

    def body(self, values: Mapping[str, Json]) -> bytes:
        """The JSON body carrying `values` where this call puts them (compact, like pydantic)."""
        document: dict[str, Json] = {}
        for name, pointer in self.request.items():
            if name in values:
                pointer.put(document, values[name])
        for pointer, value in self.constants.items():
            pointer.put(document, value)
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    def outcome(self, status: int, document: Json) -> str | None:
        """The name of the first outcome the answer matches, or None."""
        return next((o.name for o in self.outcomes if o.matches(status, document)), None)

    def accepts_status(self, status: int) -> bool:
        """Some outcome takes this status: an answer that matches none then misfits its body."""
        return any(status in o.statuses for o in self.outcomes)

    def read(self, document: Json) -> dict[str, Json]:
        """The values tggate reads that the answer has, by name."""
        values: dict[str, Json] = {}
        for name, pointer in self.response.items():
            found, value = pointer.find(document)
            if found:
                values[name] = value
        return values

    def where(self, name: str) -> str:
        """Where a value tggate reads sits, for messages: "text (/prompt/message)"."""
        pointer = self.response.get(name)
        return name if pointer is None or pointer.text == f"/{name}" else f"{name} ({pointer})"


@dataclass(frozen=True, slots=True)
class AuthApi:
    login: Call
    login_check: Call
    refresh: Call
    logout: Call
    login_types: Mapping[str, str]  # tggate's login type -> the module's word for it
    source: str  # the file it came from, or the contract document for the default


# ---- loading ----


def _bundled_text() -> str:
    return resources.files("tggate").joinpath("auth_api.toml").read_text("utf-8")


@cache
def default_auth_api() -> AuthApi:
    """Today's contract (the bundled auth_api.toml)."""
    return _build(tomllib.loads(_bundled_text()), source=DEFAULT_SOURCE)


def load_auth_api(path: Path | None = None) -> AuthApi:
    """The module's API as `path` describes it over the default, or the default."""
    if path is None:
        return default_auth_api()
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise AuthApiError(f"{path}: {error.strerror}") from None
    return parse_auth_api(text, source=str(path))


def parse_auth_api(text: str, *, source: str) -> AuthApi:
    try:
        override = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AuthApiError(f"{source}: {error}") from None
    try:
        return _build(_merge(tomllib.loads(_bundled_text()), override), source=source)
    except AuthApiError as error:
        raise AuthApiError(f"{source}: {error}") from None


def _merge(default: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The team's keys over the default's: calls and their tables key by key; a value (an
    outcome's table included) replaces the default's whole."""
    merged = {name: dict(call) for name, call in default.items()}
    for name, call in override.items():
        if name not in CALLS:
            known = ", ".join(CALLS)
            raise AuthApiError(f"[{name}]: not a call of the module (the calls: {known})")
        if not isinstance(call, dict):
            raise AuthApiError(f"{name}: expected a table [{name}]")
        target = merged[name]
        for key, value in call.items():
            if key in _TABLES and isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return merged


def _build(raw: dict[str, Any], *, source: str) -> AuthApi:
    calls = {name: _call(name, raw.get(name, {}), CALLS[name]) for name in CALLS}
    types = raw["login"].get("types", {})
    if not isinstance(types, dict):
        raise AuthApiError('login.types: expected a table like { github = "github" }')
    login_types: dict[str, str] = {}
    for login_type in _LOGIN_TYPES:
        word = types.get(login_type, login_type)
        if not isinstance(word, str) or not word:
            raise AuthApiError(f"login.types.{login_type}: expected the module's word for it")
        login_types[login_type] = word
    unknown = sorted(set(types) - set(_LOGIN_TYPES))
    if unknown:
        known = ", ".join(_LOGIN_TYPES)
        raise AuthApiError(f"login.types.{unknown[0]}: not a login type ({known})")
    for name in CALLS:
        if name != "login" and "types" in raw[name]:
            raise AuthApiError(f"{name}.types: only [login.types] maps words")
    return AuthApi(**calls, login_types=login_types, source=source)


def _call(name: str, raw: Any, vocabulary: _Vocabulary) -> Call:
    if not isinstance(raw, dict):
        raise AuthApiError(f"{name}: expected a table [{name}]")
    for key in raw:
        if key not in _CALL_KEYS:
            raise AuthApiError(f"{name}.{key}: unknown key (the keys: {', '.join(_CALL_KEYS)})")
    method = raw.get("method")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise AuthApiError(
            f"{name}.method: expected one of {', '.join(_METHODS)} (tokens travel in the "
            "body, never in a URL)"
        )
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/") or re.search(r"\s", path):
        raise AuthApiError(f"{name}.path: expected a path starting with '/', without spaces")
    state = raw.get("state", False)
    state_pointer = None if state is False else _pointer(state, f"{name}.state")
    request = _values(name, "request", raw.get("request", {}), vocabulary)
    if any(not pointer.parts for pointer in request.values()):
        raise AuthApiError(f"{name}.request: '' names the whole body; give each value a field")
    constants = _constants(name, raw.get("constants", {}))
    _no_overlap(name, [*request.values(), *constants])
    response = _values(name, "response", raw.get("response", {}), vocabulary)
    outcomes = _outcomes(name, raw.get("outcomes", {}), vocabulary, state_pointer)
    return Call(
        name=name,
        method=method.upper(),
        path=path,
        request=request,
        constants=constants,
        response=response,
        outcomes=outcomes,
    )


def _pointer(raw: Any, where: str) -> JsonPointer:
    if not isinstance(raw, str):
        raise AuthApiError(f'{where}: expected a JSON pointer like "/auth/access_token"')
    try:
        return JsonPointer.parse(raw)
    except JsonPointerError as error:
        raise AuthApiError(f"{where}: {error}") from None


def _values(name: str, part: str, raw: Any, vocabulary: _Vocabulary) -> dict[str, JsonPointer]:
    where = f"{name}.{part}"
    if not isinstance(raw, dict):
        raise AuthApiError(f"{where}: expected a table [{where}]")
    required, optional = getattr(vocabulary, part)
    known = (*required, *optional)
    for key in raw:
        if key not in known:
            names = ", ".join(known) or "none"
            raise AuthApiError(f"{where}.{key}: not a value of this call (its values: {names})")
    values: dict[str, JsonPointer] = {}
    for key in known:  # in the vocabulary's order, so the default body is today's, byte for byte
        value = raw.get(key, False)
        if value is False:
            if key in required:
                raise AuthApiError(f"{where}.{key}: required, give its JSON pointer")
            continue
        values[key] = _pointer(value, f"{where}.{key}")
    return values


def _constants(name: str, raw: Any) -> dict[JsonPointer, Json]:
    where = f"{name}.constants"
    if not isinstance(raw, dict):
        raise AuthApiError(f'{where}: expected a table like {{ "/grant_type" = "refresh" }}')
    constants: dict[JsonPointer, Json] = {}
    for key, value in raw.items():
        pointer = _pointer(key, f"{where}.{key!r}")
        if not pointer.parts:
            raise AuthApiError(f"{where}: '' names the whole body; give the constant a field")
        if not _is_json(value):
            raise AuthApiError(f"{where}.{key!r}: a date or time is not a JSON value")
        constants[pointer] = value
    return constants


def _is_json(value: Any) -> bool:
    if isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(_is_json(item) for item in value.values())
    return False


def _no_overlap(name: str, pointers: list[JsonPointer]) -> None:
    """Two values in one place, or one inside another, cannot both be sent."""
    for index, first in enumerate(pointers):
        for second in pointers[index + 1 :]:
            shorter, longer = sorted((first, second), key=lambda p: len(p.parts))
            if longer.parts[: len(shorter.parts)] == shorter.parts:
                raise AuthApiError(
                    f"{name}.request: {first} and {second} overlap; each value needs its own field"
                )


def _outcomes(
    name: str, raw: Any, vocabulary: _Vocabulary, state: JsonPointer | None
) -> tuple[AnswerKind, ...]:
    where = f"{name}.outcomes"
    if not isinstance(raw, dict):
        raise AuthApiError(f"{where}: expected a table [{where}]")
    required, optional = vocabulary.outcomes
    known = (*required, *optional)
    for key in raw:
        if key not in known:
            raise AuthApiError(f"{where}.{key}: not an outcome of this call ({', '.join(known)})")
    outcomes: list[AnswerKind] = []
    for key in known:
        value = raw.get(key, False)
        if value is False:
            if key in required:
                raise AuthApiError(f"{where}.{key}: required, say how this answer looks")
            continue
        outcomes.append(_outcome(key, value, f"{where}.{key}", state))
    # A field's condition is more precise than a status alone: those are tried first (a 404
    # saying "expired" before any 404), then in the call's own order.
    return tuple(sorted(outcomes, key=lambda outcome: outcome.at is None))


def _outcome(name: str, raw: Any, where: str, state: JsonPointer | None) -> AnswerKind:
    if not isinstance(raw, dict):
        raise AuthApiError(f'{where}: expected a table like {{ status = [200], value = "ok" }}')
    for key in raw:
        if key not in ("status", "at", "value"):
            raise AuthApiError(f"{where}.{key}: unknown key (the keys: status, at, value)")
    statuses = _statuses(raw.get("status", ["2xx"]), f"{where}.status")
    at = _pointer(raw["at"], f"{where}.at") if "at" in raw else None
    value = raw.get("value")
    if value is not None:
        if not isinstance(value, str | bool | int | float) or not _is_json(value):
            raise AuthApiError(f"{where}.value: expected a text, a number or true/false")
        if at is None:
            if state is None:
                call = where.split(".")[0]
                raise AuthApiError(f"{where}.value: say where it is: `at`, or {call}.state")
            at = state
    return AnswerKind(name=name, statuses=statuses, at=at, value=value)


def _statuses(raw: Any, where: str) -> frozenset[int]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise AuthApiError(f"{where}: name at least one status")
    statuses: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            statuses.add(item)
        elif isinstance(item, str) and _STATUS_CLASS.fullmatch(item):
            first = int(item[0]) * 100
            statuses.update(range(first, first + 100))
        else:
            raise AuthApiError(f'{where}: {item!r} is not an HTTP status (100-599, or "4xx")')
    return frozenset(statuses)
