"""One HTTP operation of a contract: method, path, request body and answers by status.

The contract modules (`auth.py`, `main.py`) declare their operations with these; the adapters
call the path and method they name, and `openapi.py` writes them into docs/openapi/, so the
document and the code read one declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Answer", "Operation"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: what it means to tggate, and its JSON body (None: not read)."""

    description: str
    body: Any = None  # a type pydantic can describe (a model, a RootModel, a list of models)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # GET, POST, PUT, PATCH or DELETE
    path: str
    operation_id: str
    summary: str
    description: str
    request: Any = None  # the body tggate sends: a pydantic model, or None for no body
    # By status; "default" is every other status, and no answer at all.
    answers: Mapping[int | Literal["default"], Answer] = field(default_factory=dict)
    bearer: bool = False  # `Authorization: Bearer <access token>` (the Main module)
    # `Authorization: Bearer <service credential>`: tggate's own, not a person's (the feed).
    service: bool = False
    # OpenAPI parameter objects (query parameters), as they appear in the document.
    parameters: tuple[Mapping[str, Any], ...] = ()
