"""Bot Logic's OpenAPI, as FastAPI derives it from tggate.contract.logic: every internal endpoint
declares its answer and the errors it may give (docs/openapi/logic.yaml is written from it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tggate.logic.app import create_app
from tggate.logic.metrics import LogicMetrics
from tggate.logic.service import BotLogic


@asynccontextmanager
async def no_logic() -> AsyncIterator[BotLogic]:
    raise AssertionError("the OpenAPI needs no running service")
    yield  # pragma: no cover


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    app = create_app(open_logic=no_logic, internal_token="t", metrics=LogicMetrics())
    return app.openapi()


def schema_of(operation: dict[str, Any], status: str) -> str:
    ref: str = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("path", "body", "answer", "extra"),
    [
        ("/v1/commands", "CommandRequest", "RepliesAnswer", {"400", "409"}),
        ("/v1/cycles/login", "CycleRequest", "MessagesAnswer", set()),
        ("/v1/cycles/notifications", "CycleRequest", "MessagesAnswer", set()),
        ("/v1/messages/ack", "AckRequest", "AckAnswer", set()),
        ("/v1/poller/lease", "LeaseRequest", "LeaseAnswer", set()),
    ],
)
def test_internal_endpoints_declare_their_answers_and_errors(
    openapi: dict[str, Any], path: str, body: str, answer: str, extra: set[str]
) -> None:
    operation = openapi["paths"][path]["post"]
    assert body in str(operation["requestBody"]["content"]["application/json"]["schema"])
    assert schema_of(operation, "200") == answer
    assert set(operation["responses"]) == {"200", "401", "413", "422", "503"} | extra
    assert schema_of(operation, "422") == "ValidationProblem"
    for status in {"401", "413", "503"} | extra:
        assert schema_of(operation, status) == "Problem", status


def test_outbox_messages_carry_their_kind(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert set(schemas["MessageJson"]["required"]) == {"id", "chat_id", "kind", "text"}
    assert schemas["OutboxKind"]["enum"] == ["login", "notification"]


def test_probes_are_documented(openapi: dict[str, Any]) -> None:
    assert schema_of(openapi["paths"]["/healthz"]["get"], "200") == "ProbeAnswer"
    assert set(openapi["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert "text/plain" in openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
