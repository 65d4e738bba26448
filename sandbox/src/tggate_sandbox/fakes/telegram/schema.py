"""The Bot API in machine-readable form: `api.json` (MIT, see `api.LICENSE`) as frozen specs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ApiSchema", "FieldSpec", "MethodSpec", "TypeSpec"]

# Abstract types (BotCommandScope, InputMedia, ...) list subtypes told apart by one field whose
# description reads 'must be chat' or 'always "user"'.
_DISCRIMINATOR_FIELDS = ("type", "source", "status")
_DISCRIMINATOR_VALUE = re.compile(r"(?:must be|always)\s+[\"“]?([a-z_]+)[\"”]?")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool
    description: str = ""


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    returns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TypeSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    subtypes: tuple[str, ...]
    # (field, literal) that marks this type among its parent's subtypes, e.g. ("type", "chat").
    discriminator: tuple[str, str] | None

    @property
    def is_abstract(self) -> bool:
        return bool(self.subtypes)


@dataclass(frozen=True, slots=True)
class ApiSchema:
    """Methods (found case-insensitively, like Telegram does) and types of one Bot API version."""

    version: str
    methods: Mapping[str, MethodSpec]
    types: Mapping[str, TypeSpec]

    def method(self, name: str) -> MethodSpec | None:
        return self.methods.get(name.lower())

    @classmethod
    def load(cls, path: Path | None = None) -> ApiSchema:
        """Read `api.json` (the copy shipped next to this module unless `path` is given)."""
        if path is None:
            raw = resources.files(__package__).joinpath("api.json").read_text(encoding="utf-8")
        else:
            raw = path.read_text(encoding="utf-8")
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiSchema:
        methods = {
            name.lower(): MethodSpec(
                name=name,
                fields=_fields(spec.get("fields", [])),
                returns=tuple(spec.get("returns", [])),
            )
            for name, spec in data["methods"].items()
        }
        types = {
            name: TypeSpec(
                name=name,
                fields=_fields(spec.get("fields", [])),
                subtypes=tuple(spec.get("subtypes", [])),
                discriminator=_discriminator(spec.get("fields", [])),
            )
            for name, spec in data["types"].items()
        }
        return cls(version=str(data.get("version", "")), methods=methods, types=types)


def _fields(raw: list[dict[str, Any]]) -> dict[str, FieldSpec]:
    return {
        f["name"]: FieldSpec(
            name=f["name"],
            types=tuple(f["types"]),
            required=bool(f.get("required", False)),
            description=str(f.get("description", "")),
        )
        for f in raw
    }


def _discriminator(raw: list[dict[str, Any]]) -> tuple[str, str] | None:
    for f in raw:
        if f["name"] in _DISCRIMINATOR_FIELDS and f.get("required", False):
            match = _DISCRIMINATOR_VALUE.search(str(f.get("description", "")))
            if match:
                return f["name"], match.group(1)
    return None
