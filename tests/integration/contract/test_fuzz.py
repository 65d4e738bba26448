"""The reference modules fuzzed from the contract's own documents, docs/openapi/auth.yaml and
main.yaml (issue 9): whatever a client sends, fitting the contract or not, no answer of 500 or
above, and every 4xx says what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from tests.support.fuzz import fuzz, load_schema
from tests.support.sandbox import ADMIN_SECRET, TEST_API, TEST_API_SECRET
from tests.support.servers import run_asgi

from tggate_sandbox.reference.auth import create_app as create_auth_app
from tggate_sandbox.reference.main import create_app as create_main_app

DOCUMENTS = Path(__file__).resolve().parents[3] / "docs" / "openapi"
JWT_SECRET = "fuzz-test-jwt-secret-0123456789abcdef0123456789"


SERVICE_TOKEN = "fuzz-service-token-0123456789abcdef0123"


@dataclass(frozen=True)
class Modules:
    auth: str
    main: str


@pytest.fixture(scope="module")
def modules() -> Iterator[Modules]:
    auth = create_auth_app(jwt_secret=JWT_SECRET, test_api_secret=TEST_API_SECRET)
    main = create_main_app(
        jwt_secret=JWT_SECRET,
        admin_secret=ADMIN_SECRET,
        test_api_secret=TEST_API_SECRET,
        service_token=SERVICE_TOKEN,
    )
    with run_asgi(auth) as auth_url, run_asgi(main) as main_url:
        yield Modules(auth=auth_url, main=main_url)


def document(name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((DOCUMENTS / name).read_text("utf-8"))
    return loaded


def test_the_reference_authorization_module_fuzzed_from_auth_yaml(modules: Modules) -> None:
    problems = fuzz(load_schema(document("auth.yaml")), base_url=modules.auth)
    assert not problems, "\n".join(problems)


def test_the_reference_main_module_fuzzed_from_main_yaml(modules: Modules) -> None:
    minted = httpx.post(
        f"{modules.auth}/test/tokens", json={"identity": "alice"}, headers=TEST_API, timeout=10
    ).json()
    schema = load_schema(document("main.yaml"))
    # As a person with a valid access token (the handlers run), and with whatever is generated.
    bearer = {"Authorization": f"Bearer {minted['access_token']}"}
    problems = fuzz(schema, base_url=modules.main, headers=bearer)
    problems += fuzz(schema, base_url=modules.main)
    # The feed of the bulk mode with the service credential (its handler runs).
    main = document("main.yaml")
    feed = {**main, "paths": {"/notifications": main["paths"]["/notifications"]}}  # type: ignore[index]
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    problems += fuzz(load_schema(feed), base_url=modules.main, headers=service)
    assert not problems, "\n".join(problems)
