"""Turn a Main module answer into reply text, as the command table says (docs/scenarios.md#z5)."""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Callable, Mapping
from typing import Any

from tggate.core.commands import ActionSpec

__all__ = ["render_action_reply"]

_MISSING = "—"
_MAX_ITEMS = 50


class _Fields(dict[str, Any]):
    """Values for a template: absent fields show as a dash instead of raising."""

    def __missing__(self, key: str) -> str:
        return _MISSING


class _SafeFormatter(string.Formatter):
    """Only `{name}` lookups: no attribute or index access reaches into the data."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if not field_name.isidentifier():
            return _MISSING, field_name
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)


_FORMATTER = _SafeFormatter()

_CONVERSIONS: dict[str | None, Callable[[Any], Any]] = {
    None: lambda value: value,
    "s": str,
    "r": repr,
    "a": ascii,
}

# (literal text, field name or None, conversion) of a template.
_Part = tuple[str, str | None, Callable[[Any], Any]]


@functools.lru_cache(maxsize=512)
def _parts(template: str) -> tuple[_Part, ...] | None:
    """A template split once (the table's templates are few, and a reply is filled each
    command: parsing it again cost more than the rest of rendering, issue 11); None when only
    `_FORMATTER` fills it as it should (a malformed template, a field name that is not a plain
    name, a field inside a format spec, an unknown conversion)."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None
    parts: list[_Part] = []
    for literal, field, spec, conversion in parsed:
        if field is not None and (
            not field.isidentifier() or "{" in (spec or "") or conversion not in _CONVERSIONS
        ):
            return None
        parts.append((literal, field, _CONVERSIONS[conversion if field is not None else None]))
    return tuple(parts)


def _fill(template: str, data: Any) -> str:
    fields = _Fields(data) if isinstance(data, Mapping) else _Fields(value=data)
    parts = _parts(template)
    if parts is None:
        try:
            return _FORMATTER.vformat(template, (), fields)
        except (ValueError, IndexError, KeyError):
            return template
    # What `_FORMATTER` gives for these templates; the format spec is ignored, as it is there.
    pieces: list[str] = []
    for literal, field, convert in parts:
        pieces.append(literal)
        if field is not None:
            pieces.append(_FORMATTER.format_field(convert(fields[field]), ""))
    return "".join(pieces)


def render_action_reply(spec: ActionSpec, data: Any, language: str) -> str:
    reply = spec.reply
    if reply.items is not None:
        items = data if reply.items == "." else (data or {}).get(reply.items)
        if not isinstance(items, list):
            items = []
        lines: list[str] = []
        if reply.header is not None:
            lines.append(_fill(reply.header.get(language), data))
        if not items and reply.empty is not None:
            lines.append(_fill(reply.empty.get(language), data))
        item_template = reply.item.get(language) if reply.item is not None else "• {value}"
        lines.extend(_fill(item_template, item) for item in items[:_MAX_ITEMS])
        if len(items) > _MAX_ITEMS:
            lines.append(f"… (+{len(items) - _MAX_ITEMS})")
        return "\n".join(lines)
    if reply.template is not None:
        return _fill(reply.template.get(language), data)
    # No rendering declared: show the data itself, readable.
    return json.dumps(data, ensure_ascii=False, indent=1)
