"""Property-based fuzzing of an HTTP API from its OpenAPI document (schemathesis; issue 9).

Every operation of the document gets requests that fit its schema and requests that do not,
sent over real HTTP to a running server. Two properties must hold for every answer: no status of
500 or above (a fault of ours is a bug, never an answer), and every 4xx says what was wrong (a
JSON `detail` / `description` / `message`, or a text page that is not empty).

Bounded and reproducible: a fixed number of examples per operation and generation mode, drawn
deterministically (Hypothesis' `derandomize`), no example database, so CI runs the same requests
every time and the whole fuzzing stays well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

__all__ = ["EXAMPLES", "fuzz", "load_schema"]

# Per operation and generation mode: ~70 operations x 2 modes x this stays under a minute.
EXAMPLES = 8

# A hook that changes a generated case before it is sent (e.g. no long poll): returns nothing.
Adjust = Callable[[Case], None]


def load_schema(document: Mapping[str, Any]) -> schemathesis.BaseSchema:
    """A schemathesis schema of an OpenAPI document (a dict: a YAML file, or `app.openapi()`)."""
    schema = schemathesis.openapi.from_dict(dict(document))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        deterministic=True,
        database="none",
    )
    return schema


def fuzz(
    schema: schemathesis.BaseSchema,
    *,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    adjust: Adjust | None = None,
) -> list[str]:
    """Send every operation its examples; the problems found, each with a curl line to replay."""
    problems: list[str] = []
    with requests.Session() as session:  # one kept-alive connection for all the requests
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                found = _fuzz_operation(
                    operation,
                    mode,
                    session=session,
                    base_url=base_url,
                    headers=dict(headers or {}),
                    adjust=adjust,
                )
                problems.extend(dict.fromkeys(found))  # each distinct one once
    return problems


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    *,
    session: requests.Session,
    base_url: str,
    headers: dict[str, str],
    adjust: Adjust | None,
) -> list[str]:
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every problem is kept as found
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Case) -> None:
        if adjust is not None:
            adjust(case)
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        problem = _problem(response.status_code, response.headers, response.content)
        if problem is not None:
            replay = case.as_curl_command(headers=headers, base_url=base_url)
            seen.append(f"{operation.label} ({mode.value}): {problem}\n    {replay}")

    try:
        send()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): the positive examples cover it.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return seen


def _problem(status: int, headers: Mapping[str, Any], body: bytes) -> str | None:
    if status >= 500:
        return f"{status}: {body[:200]!r}"
    if 400 <= status < 500 and not _says_why(headers, body):
        return f"{status} without a message: {body[:200]!r}"
    return None


def _says_why(headers: Mapping[str, Any], body: bytes) -> bool:
    found = headers.get("content-type") or headers.get("Content-Type") or ""
    content_type = str(found[0] if isinstance(found, list) and found else found)
    if "json" in content_type:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        if not isinstance(answer, dict):
            return False
        return any(answer.get(key) for key in ("detail", "description", "message", "error"))
    return bool(body.strip())
