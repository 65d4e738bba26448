"""Every Bot API call is checked against `api.json` before the fake acts on it.

Telegram itself ignores unknown parameters; the fake rejects them (and missing required ones, and
values of the wrong type) so that a bot's mistakes fail in tests instead of passing silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tggate_sandbox.fakes.telegram.errors import ApiError, bad_request
from tggate_sandbox.fakes.telegram.schema import ApiSchema, FieldSpec, MethodSpec

__all__ = ["UploadedFile", "Validator"]

_ARRAY = "Array of "
_INTEGER = re.compile(r"[+-]?\d+")
_MAX_CALLBACK_DATA_BYTES = 64
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_MAX_COMMAND_DESCRIPTION = 256
_BUTTON_URL = re.compile(r"(?:https?|tg)://\S+", re.IGNORECASE)
# An inline keyboard button must do something: exactly these fields make it act.
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# Parameters the real server still accepts although the current documentation (and so api.json)
# no longer lists them; aiogram 3 still has them on its method models.
_LEGACY_REPLY = {
    "reply_to_message_id": FieldSpec("reply_to_message_id", ("Integer",), required=False),
    "allow_sending_without_reply": FieldSpec(
        "allow_sending_without_reply", ("Boolean",), required=False
    ),
}
_LEGACY_PREVIEW = {
    "disable_web_page_preview": FieldSpec("disable_web_page_preview", ("Boolean",), required=False)
}


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request: the fake keeps only its name and size."""

    filename: str
    size: int


class _Mismatch(Exception):
    """A value does not fit one candidate type; `score` says how close it came (for unions)."""

    def __init__(self, message: str, score: int = 0):
        super().__init__(message)
        self.message = message
        self.score = score


class Validator:
    """Checks and converts the raw parameters of one call (strings from forms, JSON values)."""

    def __init__(self, schema: ApiSchema):
        self._schema = schema
        self._type_checks: Mapping[str, Callable[[dict[str, Any]], None]] = {
            "InlineKeyboardButton": _check_inline_keyboard_button,
            "BotCommand": _check_bot_command,
        }

    def validate_call(self, method: MethodSpec, raw: Mapping[str, object]) -> dict[str, Any]:
        """Return the parameters converted to Python values, or raise a 400 `ApiError`."""
        fields = _fields_of(method)
        present = {name: value for name, value in raw.items() if value is not None and value != ""}
        strings = [value for value in present.values() if isinstance(value, str)]
        for name, value in present.items():
            if name in fields:
                continue
            if isinstance(value, UploadedFile) and any(f"attach://{name}" in s for s in strings):
                continue  # a file part referenced from another parameter
            raise bad_request(f"unknown parameter {name}")
        for spec in fields.values():
            if spec.required and spec.name not in present:
                raise _missing(method.name, spec.name)
        converted: dict[str, Any] = {}
        for name, value in present.items():
            if name not in fields:
                continue
            try:
                converted[name] = self._top(fields[name], value)
            except _Mismatch as mismatch:
                raise bad_request(mismatch.message) from None
        return converted

    # ---- top level: strings from query strings and forms, or values of a JSON body ----

    def _top(self, spec: FieldSpec, value: object) -> Any:
        best: _Mismatch | None = None
        for type_name in spec.types:
            try:
                return self._top_one(type_name, value, spec.name)
            except _Mismatch as mismatch:
                if best is None or mismatch.score > best.score:
                    best = mismatch
        assert best is not None
        if best.score == 0 and len(spec.types) > 1:
            raise _Mismatch(f"parameter {spec.name} must be of type {' or '.join(spec.types)}")
        raise best

    def _top_one(self, type_name: str, value: object, path: str) -> Any:
        if isinstance(value, UploadedFile):
            if type_name == "InputFile":
                return value
            raise _Mismatch(f"parameter {path} must be of type {type_name}")
        if type_name == "Integer":
            return _to_integer(value, path)
        if type_name == "Float":
            return _to_float(value, path)
        if type_name == "Boolean":
            return _to_boolean(value, path)
        if type_name == "String":
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return json.dumps(value)  # a JSON body's number, as the real server reads it
            raise _Mismatch(f"parameter {path} must be of type String")
        if type_name == "InputFile":
            if isinstance(value, str) and value.startswith("attach://"):
                return value
            raise _Mismatch(f"parameter {path} must be of type InputFile")
        decoded = value
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError:
                raise _Mismatch(_cant_parse(path), score=1) from None
        return self._nested(type_name, decoded, path)

    # ---- inside JSON-serialized parameters: JSON types must match exactly ----

    def _nested_union(self, types: Sequence[str], value: Any, path: str, label: str) -> Any:
        if len(types) == 1:
            return self._nested(types[0], value, path)
        best: _Mismatch | None = None
        for type_name in self._rank(types, value):
            try:
                return self._nested(type_name, value, path)
            except _Mismatch as mismatch:
                if best is None or mismatch.score > best.score:
                    best = mismatch
        assert best is not None
        if best.score == 0:
            raise _Mismatch(f"parameter {path} must be of type {label}")
        raise best

    def _rank(self, types: Sequence[str], value: Any) -> list[str]:
        """Try first the object type whose fields the value uses most."""
        if not isinstance(value, dict):
            return list(types)

        def overlap(type_name: str) -> int:
            spec = self._schema.types.get(type_name)
            if spec is None:
                return -1
            bonus = 0
            if spec.discriminator is not None:
                key, literal = spec.discriminator
                bonus = 100 if value.get(key) == literal else -100
            return bonus + sum(1 for key in value if key in spec.fields)

        return sorted(types, key=overlap, reverse=True)

    def _nested(self, type_name: str, value: Any, path: str) -> Any:
        if type_name.startswith(_ARRAY):
            if not isinstance(value, list):
                raise _Mismatch(f"parameter {path} must be of type {type_name}")
            inner = type_name.removeprefix(_ARRAY)
            return [self._nested(inner, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if type_name == "Integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise _Mismatch(f"parameter {path} must be of type Integer")
        if type_name == "Float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise _Mismatch(f"parameter {path} must be of type Float")
        if type_name == "Boolean":
            if isinstance(value, bool):
                return value
            raise _Mismatch(f"parameter {path} must be of type Boolean")
        if type_name in ("String", "InputFile"):
            if isinstance(value, str):
                return value
            raise _Mismatch(f"parameter {path} must be of type {type_name}")
        spec = self._schema.types.get(type_name)
        if spec is None:
            return value
        if spec.is_abstract:
            return self._nested_union(spec.subtypes, value, path, label=type_name)
        if not isinstance(value, dict):
            raise _Mismatch(f"parameter {path} must be of type {type_name}")
        if not spec.fields:
            return value  # e.g. CallbackGame: an empty object
        score = 1 + sum(1 for key in value if key in spec.fields)
        if spec.discriminator is not None:
            key, literal = spec.discriminator
            if value.get(key) != literal:
                raise _Mismatch(f'parameter {path}.{key} must be "{literal}"')
            score += 100
        for key in value:
            if key not in spec.fields:
                raise _Mismatch(f"unknown parameter {path}.{key}", score)
        for field in spec.fields.values():
            if field.required and value.get(field.name) is None:
                raise _Mismatch(f"parameter {path}.{field.name} is required", score)
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            field = spec.fields[key]
            try:
                converted[key] = self._nested_union(
                    field.types, item, f"{path}.{key}", label=" or ".join(field.types)
                )
            except _Mismatch as mismatch:
                raise _Mismatch(mismatch.message, score + mismatch.score) from None
        check = self._type_checks.get(type_name)
        if check is not None:
            check(converted)
        return converted


def _fields_of(method: MethodSpec) -> dict[str, FieldSpec]:
    fields = dict(method.fields)
    if "reply_parameters" in fields:
        fields.update(_LEGACY_REPLY)
    if "link_preview_options" in fields:
        fields.update(_LEGACY_PREVIEW)
    return fields


def _missing(method: str, name: str) -> ApiError:
    if name == "text" and method in ("sendMessage", "editMessageText"):
        return bad_request("message text is empty")
    if name == "chat_id":
        return bad_request("chat_id is empty")
    return bad_request(f"parameter {name} is required")


def _cant_parse(path: str) -> str:
    if path == "reply_markup":
        return "can't parse reply keyboard markup JSON object"
    return f"can't parse {path} JSON object"


def _to_integer(value: object, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise _Mismatch(f"parameter {path} must be of type Integer")


def _to_float(value: object, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise _Mismatch(f"parameter {path} must be of type Float")


def _to_boolean(value: object, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise _Mismatch(f"parameter {path} must be of type Boolean")


def _check_inline_keyboard_button(button: dict[str, Any]) -> None:
    data = button.get("callback_data")
    if data is not None and not 1 <= len(data.encode()) <= _MAX_CALLBACK_DATA_BYTES:
        raise bad_request("BUTTON_DATA_INVALID")
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    url = button.get("url")
    if url is not None and not _BUTTON_URL.fullmatch(url):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _check_bot_command(command: dict[str, Any]) -> None:
    if not command["command"]:
        raise bad_request("command must be non-empty")
    if not _BOT_COMMAND.fullmatch(command["command"]):
        raise bad_request("BOT_COMMAND_INVALID")
    description: str = command["description"]
    if not description.strip():
        raise bad_request("command description must be non-empty")
    if len(description) > _MAX_COMMAND_DESCRIPTION:
        raise bad_request(f"command description length must not exceed {_MAX_COMMAND_DESCRIPTION}")
