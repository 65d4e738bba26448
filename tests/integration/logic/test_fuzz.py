"""Bot Logic's API fuzzed from docs/openapi/logic.yaml (issue 9): no answer of 500 or above,
every 4xx with a message; with the internal token (the requests then reach the handlers, the
real Redis and the reference modules) and without it."""

from __future__ import annotations

from pathlib import Path

import yaml
from redis.asyncio import Redis
from tests.integration.logic.conftest import INTERNAL_TOKEN
from tests.support.fuzz import fuzz, load_schema

DOCUMENT = Path(__file__).parents[3] / "docs" / "openapi" / "logic.yaml"


def test_bot_logic_answers_every_request_of_its_openapi_without_a_5xx(
    logic_url: str, redis_client: Redis
) -> None:
    schema = load_schema(yaml.safe_load(DOCUMENT.read_text("utf-8")))
    problems = fuzz(schema, base_url=logic_url, headers={"X-Internal-Token": INTERNAL_TOKEN})
    problems += fuzz(schema, base_url=logic_url)  # no token: 401 with a message, never a 5xx
    assert not problems, "\n".join(problems)
