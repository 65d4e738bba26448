"""Turn a Main module answer into reply text, as the command table says (docs/scenarios.md#z5)."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
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


def _fill(template: str, data: Any) -> str:
    fields = _Fields(data) if isinstance(data, Mapping) else _Fields(value=data)
    try:
        return _FORMATTER.vformat(template, (), fields)
    except (ValueError, IndexError, KeyError):
        return template


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
