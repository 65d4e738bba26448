"""JSON pointers (RFC 6901): where a value sits in a module's request or answer body.

`"/auth/access_token"` names `{"auth": {"access_token": …}}`; `""` names the whole document;
`~1` stands for `/` and `~0` for `~` inside a key. Reading walks objects by key and arrays by
index; writing builds the objects on the way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPointer", "JsonPointerError"]

_INDEX = re.compile(r"0|[1-9][0-9]*")


class JsonPointerError(ValueError):
    """The text is not a JSON pointer."""


@dataclass(frozen=True, slots=True)
class JsonPointer:
    text: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPointer:
        if text == "":
            return cls(text, ())
        if not text.startswith("/"):
            raise JsonPointerError(f"{text!r} is not a JSON pointer (it starts with '/')")
        if re.search(r"~(?![01])", text):
            raise JsonPointerError(f"{text!r}: '~' must be followed by 0 or 1 (RFC 6901)")
        parts = tuple(part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/"))
        return cls(text, parts)

    def find(self, document: Any) -> tuple[bool, Any]:
        """(True, the value) when the document has one here, else (False, None)."""
        here = document
        for part in self.parts:
            if isinstance(here, dict):
                if part not in here:
                    return False, None
                here = here[part]
            elif isinstance(here, list) and _INDEX.fullmatch(part) and int(part) < len(here):
                here = here[int(part)]
            else:
                return False, None
        return True, here

    def put(self, document: dict[str, Any], value: Any) -> None:
        """Write `value` here, creating objects on the way (a request body is built this way).

        JsonPointerError when the place is taken by a value that is not an object, or when this
        is the whole document.
        """
        if not self.parts:
            raise JsonPointerError("'' names the whole body, which must stay an object")
        here = document
        for part in self.parts[:-1]:
            child = here.setdefault(part, {})
            if not isinstance(child, dict):
                raise JsonPointerError(f"{self.text!r} passes through a value, not an object")
            here = child
        here[self.parts[-1]] = value

    def __str__(self) -> str:
        return self.text
