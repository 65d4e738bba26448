"""docs/openapi/*.yaml are exactly what the code generates (docs/contract.md), and valid OpenAPI.

The documents are made from the contract models the adapters build and read
(`tggate.contract.auth`, `.main`), the bundled command table and Bot Logic's app; so a field added
to a model, an operation or an action without regenerating fails here.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from tggate.contract.openapi import FILES, documents, main, render, write

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "openapi"
REGENERATE = "uv run python -m tggate.contract.openapi"


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return documents()


def _committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCS / name).read_text("utf-8"))
    return loaded


@pytest.mark.parametrize("name", FILES)
def test_the_committed_document_is_what_the_code_generates(
    name: str, generated: dict[str, dict[str, Any]]
) -> None:
    committed = (DOCS / name).read_text("utf-8")
    fresh = render(name, generated[name])
    if committed != fresh:
        diff = difflib.unified_diff(
            committed.splitlines(), fresh.splitlines(), "committed", "generated", lineterm="", n=2
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(f"docs/openapi/{name} is out of date; run `{REGENERATE}`:\n{shown}")


@pytest.mark.parametrize("name", FILES)
def test_each_document_is_valid_openapi_3_1(name: str) -> None:
    document = _committed(name)
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_generator_writes_and_checks_a_folder(tmp_path: Path) -> None:
    assert sorted(write(tmp_path, check=True)) == sorted(FILES)  # nothing there yet
    assert sorted(write(tmp_path)) == sorted(FILES)
    assert write(tmp_path, check=True) == []
    for name in FILES:
        assert (tmp_path / name).read_text("utf-8") == (DOCS / name).read_text("utf-8")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_main_module_call_carries_the_bearer_token() -> None:
    document = _committed("main.yaml")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The chat's access token, as the Authorization module issued it.",
    }
    for method, path, operation in _operations(document):
        if (method, path) == ("GET", "/notifications"):
            continue  # the feed of the bulk mode: tggate's service token (below)
        assert operation["security"] == [{"bearerAuth": []}], (method, path)


def test_the_notification_feed_carries_the_service_token_not_a_persons() -> None:
    document = _committed("main.yaml")
    scheme = document["components"]["securitySchemes"]["serviceAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "bearerFormat" not in scheme  # an opaque secret, not a JWT
    feed = document["paths"]["/notifications"]["get"]
    assert feed["security"] == [{"serviceAuth": []}]
    assert [(p["name"], p["in"], p["required"]) for p in feed["parameters"]] == [
        ("after", "query", False),
        ("limit", "query", True),
    ]


def test_the_main_module_document_lists_the_bundled_actions() -> None:
    document = _committed("main.yaml")
    actions = {
        operation["operationId"]: (method, path)
        for method, path, operation in _operations(document)
        if operation["operationId"].startswith("action_")
    }
    assert actions == {
        "action_me": ("GET", "/api/me"),
        "action_courses": ("GET", "/api/courses"),
        "action_course": ("GET", "/api/courses/{course_id}"),
        "action_tasks": ("GET", "/api/courses/{course_id}/tasks"),
        "action_students": ("GET", "/api/courses/{course_id}/students"),
        "action_grades": ("GET", "/api/grades"),
    }


def test_bot_logic_asks_for_the_internal_token_except_on_its_probes() -> None:
    document = _committed("logic.yaml")
    scheme = document["components"]["securitySchemes"]["internalToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "header",
        "X-Internal-Token",
    )
    for method, path, operation in _operations(document):
        if path in ("/healthz", "/readyz", "/metrics"):
            assert "security" not in operation, path
            continue
        assert operation["security"] == [{"internalToken": []}], (method, path)
        assert "401" in operation["responses"], (method, path)
        names = [p["name"].lower() for p in operation.get("parameters", [])]
        assert "x-internal-token" not in names, (method, path)


def test_the_authorization_module_is_asked_with_tokens_in_bodies_only() -> None:
    document = _committed("auth.yaml")
    for method, path, operation in _operations(document):
        assert method == "POST", path
        assert "parameters" not in operation, path
        assert operation["requestBody"]["required"] is True, path


TEAM_TABLE = """
[[actions]]
command = "invoice"
description = { ru = "Счёт", en = "An invoice" }
method = "POST"
path = "/billing/invoices/{number}/send"
[[actions.args]]
name = "number"
pattern = "^[0-9]{1,9}$"
[actions.reply]
template = "Invoice {number} sent to {email}"
"""


def test_a_teams_command_table_gives_its_own_actions(tmp_path: Path) -> None:
    table = tmp_path / "team.toml"
    table.write_text(TEAM_TABLE, "utf-8")

    assert main(["--out", str(tmp_path / "docs"), "--commands", str(table)]) == 0

    document = yaml.safe_load((tmp_path / "docs" / "main.yaml").read_text("utf-8"))
    validate(document)
    operation = document["paths"]["/billing/invoices/{number}/send"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert operation["parameters"] == [
        {
            "name": "number",
            "in": "path",
            "required": True,
            "description": "number",
            "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
        }
    ]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["number", "email"]
    assert set(operation["responses"]) == {"200", "401", "403", "404", "default"}
    assert "/api/me" not in document["paths"]


def test_check_says_which_files_are_out_of_date(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
