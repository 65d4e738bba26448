"""docs/openapi/*.yaml, generated from the code that speaks each contract (docs/contract.md).

- auth.yaml: the Authorization module's API, from `tggate.contract.auth`;
- main.yaml: the Main module's API, from `tggate.contract.main` and the actions of a command
  table (the bundled `src/tggate/commands.toml` for the committed file);
- logic.yaml: Bot Logic's internal API, from its FastAPI app (`tggate.logic.app.create_app`),
  built but never started.

A request body is documented as tggate sends it (every field, defaults included); an answer as
tggate accepts it (a field with a default may be left out). `uv run python -m
tggate.contract.openapi` rewrites the files; `--check` only says which differ, as the drift test
(tests/unit/contract/test_openapi_drift.py) does.
"""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from tggate.contract import auth as auth_contract
from tggate.contract import main as main_contract
from tggate.contract.operations import Operation
from tggate.core.commands import (
    ActionSpec,
    CommandTable,
    CommandTableError,
    Localized,
    ReplySpec,
    load_command_table,
)

__all__ = [
    "CONTRACT_VERSION",
    "FILES",
    "auth_document",
    "documents",
    "logic_document",
    "main",
    "main_document",
    "render",
    "write",
]

# The version of the contracts, not of tggate: it changes when a contract does.
CONTRACT_VERSION: Final = "1"
FILES: Final = ("auth.yaml", "main.yaml", "logic.yaml")

_REF_TEMPLATE = "#/components/schemas/{model}"
_JSON = "application/json"
_BEARER = "bearerAuth"
_SERVICE = "serviceAuth"
_INTERNAL = "internalToken"
_INTERNAL_HEADER = "X-Internal-Token"


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the name says it already)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


# ---- the Authorization and Main modules: from the contract's operations ----


def _body_schemas(
    operations: Sequence[Operation],
) -> tuple[dict[tuple[int, str], Any], dict[str, Any]]:
    """Schemas of every body, keyed by (operation index, "request" | status), and the models
    they refer to, in one namespace so that every model is described once."""
    inputs: list[tuple[tuple[int, str], JsonSchemaMode, TypeAdapter[Any]]] = []
    for index, operation in enumerate(operations):
        if operation.request is not None:
            inputs.append(((index, "request"), "serialization", TypeAdapter(operation.request)))
        for status, answer in operation.answers.items():
            if answer.body is not None:
                inputs.append(((index, str(status)), "validation", TypeAdapter(answer.body)))
    by_input, definitions = TypeAdapter.json_schemas(
        inputs, ref_template=_REF_TEMPLATE, schema_generator=_Schemas
    )
    schemas = {key: schema for (key, _mode), schema in by_input.items()}
    return schemas, dict(sorted(definitions.get("$defs", {}).items()))


def _responses(operation: Operation, body_schema: Mapping[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in operation.answers.items():
        response: dict[str, Any] = {"description": answer.description}
        if str(status) in body_schema:
            response["content"] = {_JSON: {"schema": body_schema[str(status)]}}
        responses[str(status)] = response
    return responses


def _operation(
    operation: Operation,
    schemas: Mapping[tuple[int, str], Any],
    index: int,
    *,
    parameters: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
    }
    if parameters or operation.parameters:
        described["parameters"] = [*operation.parameters, *parameters]
    if operation.request is not None:
        described["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": schemas[(index, "request")]}},
        }
    bodies = {key: schema for (i, key), schema in schemas.items() if i == index}
    described["responses"] = _responses(operation, bodies)
    if operation.bearer:
        described["security"] = [{_BEARER: []}]
    if operation.service:
        described["security"] = [{_SERVICE: []}]
    return described


def _paths(described: Iterable[tuple[Operation, dict[str, Any]]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for operation, item in described:
        paths.setdefault(operation.path, {})[operation.method.lower()] = item
    return paths


def _document(
    *,
    title: str,
    description: str,
    operations: Sequence[Operation],
    extra_paths: Iterable[tuple[Operation, dict[str, Any]]] = (),
    bearer: bool = False,
) -> dict[str, Any]:
    schemas, definitions = _body_schemas(operations)
    described = [(op, _operation(op, schemas, i)) for i, op in enumerate(operations)]
    components: dict[str, Any] = {"schemas": definitions}
    if bearer:
        components["securitySchemes"] = {
            _BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The chat's access token, as the Authorization module issued it.",
            }
        }
    if any(operation.service for operation in operations):
        components.setdefault("securitySchemes", {})[_SERVICE] = {
            "type": "http",
            "scheme": "bearer",
            "description": "tggate's service credential (TGGATE_MAIN_SERVICE_TOKEN), "
            "for the notification feed of the bulk mode; never a person's token.",
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": CONTRACT_VERSION, "description": description},
        "paths": _paths([*described, *extra_paths]),
        "components": components,
    }


def auth_document() -> dict[str, Any]:
    return _document(
        title="tggate: what it expects from an Authorization module",
        description=(
            "The calls Bot Logic makes to the Authorization module. All bodies are JSON; "
            "tokens travel only in bodies, never in URLs. Unknown fields are ignored on both "
            "sides. The steps (U2, A2 ...) are those of docs/scenarios.md; what a module must "
            "guarantee is in docs/contract.md."
        ),
        operations=auth_contract.OPERATIONS,
    )


def main_document(table: CommandTable | None = None) -> dict[str, Any]:
    """The Main module's API; `table` (default: the bundled one) gives the actions."""
    table = table if table is not None else load_command_table()
    actions = [(_action_operation(spec), spec) for spec in table.actions.values()]
    document = _document(
        title="tggate: what it expects from a Main module",
        description=(
            "The calls Bot Logic makes to the Main module, each with the chat's access token "
            "as `Authorization: Bearer`. The notification endpoints are fixed. The actions are "
            "whatever the command table declares (method, path, how a 200 becomes a reply); "
            "the ones listed here are those of the bundled table (src/tggate/commands.toml), "
            "which the reference Main module serves. Every action is read the same way: 200, "
            "401, 403, 404 as described on each. Unknown fields are ignored. The steps are "
            "those of docs/scenarios.md; what a module must guarantee is in docs/contract.md."
        ),
        operations=main_contract.OPERATIONS,
        extra_paths=[(op, _action_item(op, spec)) for op, spec in actions],
        bearer=True,
    )
    if actions:
        document["components"]["responses"] = _shared_answers()
    return document


# ---- actions: one per entry of the command table ----


def _action_operation(spec: ActionSpec) -> Operation:
    return Operation(
        method=spec.method,
        path=spec.path,
        operation_id=f"action_{spec.command}",
        summary=f"/{spec.command}: {spec.description.en}",
        description=f"The command `{spec.usage('en')}` (Z4).",
        answers=main_contract.ACTION_ANSWERS,
        bearer=True,
    )


def _action_item(operation: Operation, spec: ActionSpec) -> dict[str, Any]:
    in_path = {name for _, name, _, _ in string.Formatter().parse(spec.path) if name}
    parameters = [
        {
            "name": arg.name,
            "in": "path",
            "required": True,
            "description": arg.description.en,
            "schema": {"type": "string", "pattern": arg.pattern},
        }
        for arg in spec.args
        if arg.name in in_path
    ]
    item = _operation(operation, {}, 0, parameters=parameters)
    for status in item["responses"]:
        if status != "200":  # the same for every action: described once (_shared_answers)
            item["responses"][status] = {"$ref": f"#/components/responses/{_answer_name(status)}"}
    item["responses"]["200"]["content"] = {_JSON: {"schema": _reply_schema(spec.reply)}}
    return item


def _answer_name(status: str) -> str:
    return f"action-{status}"


def _shared_answers() -> dict[str, Any]:
    return {
        _answer_name(str(status)): {"description": answer.description}
        for status, answer in main_contract.ACTION_ANSWERS.items()
        if status != 200
    }


def _template_fields(*templates: Localized | None) -> list[str]:
    fields: list[str] = []
    for localized in templates:
        if localized is None:
            continue
        for text in (localized.ru, localized.en):
            for _, name, _, _ in string.Formatter().parse(text):
                if name and name.isidentifier() and name not in fields:
                    fields.append(name)
    return fields


def _object(fields: Sequence[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {name: {} for name in fields},
    }


def _reply_schema(reply: ReplySpec) -> dict[str, Any]:
    """The JSON the reply reads (src/tggate/core/render.py); a field it lacks shows as "—"."""
    if reply.items is None and reply.template is None:
        return {"description": "Any JSON: the reply shows it as it is."}
    if reply.items is None:
        return _object(_template_fields(reply.template), "The fields the reply template reads.")
    items = {
        "type": "array",
        "description": "One line of the reply per element (at most 50).",
        "items": _object(_template_fields(reply.item), "The fields each line reads."),
    }
    if reply.items == ".":
        return items
    outer = _object(
        _template_fields(reply.header, reply.empty), "The fields the reply's header reads."
    )
    outer["properties"][reply.items] = items
    outer["required"] = [reply.items]
    return outer


# ---- Bot Logic: from its FastAPI app ----


def _never_opened() -> AbstractAsyncContextManager[Any]:
    raise RuntimeError("Bot Logic's app is only described here, never started")


def logic_document() -> dict[str, Any]:
    """What Bot Logic's app declares, with its internal token as a security scheme."""
    # Imported here: the Bot Logic app pulls in FastAPI and Prometheus, which the other two
    # documents do not need.
    from tggate.logic.app import create_app
    from tggate.logic.metrics import LogicMetrics

    app = create_app(open_logic=_never_opened, internal_token="unused", metrics=LogicMetrics())
    document: dict[str, Any] = app.openapi()
    document["info"]["version"] = CONTRACT_VERSION
    document["info"].setdefault(
        "description",
        "Bot Logic's internal API: the Telegram Client calls it through nginx. Steps as in "
        "docs/scenarios.md; the rules in docs/contract.md.",
    )
    _internal_token_as_security(document)
    return document


def _internal_token_as_security(document: dict[str, Any]) -> None:
    """The shared secret in `X-Internal-Token` is a security scheme, not a plain header: a
    header parameter by that name becomes the scheme, and every operation that requires it
    documents the 401 it answers without it."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    header = _INTERNAL_HEADER.lower()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            parameters = operation.get("parameters", [])
            kept = [
                p
                for p in parameters
                if not (p.get("in") == "header" and p["name"].lower() == header)
            ]
            if len(kept) != len(parameters):
                if kept:
                    operation["parameters"] = kept
                else:
                    del operation["parameters"]
                operation.setdefault("security", []).append({_INTERNAL: []})
                schemes.setdefault(
                    _INTERNAL,
                    {
                        "type": "apiKey",
                        "in": "header",
                        "name": _INTERNAL_HEADER,
                        "description": "The secret shared by Bot Logic and the Telegram Client.",
                    },
                )
            if operation.get("security"):
                operation["responses"].setdefault(
                    "401", {"description": f"Missing or wrong {_INTERNAL_HEADER}."}
                )
    if not schemes:
        del document["components"]["securitySchemes"]


# ---- the files ----


def documents(table: CommandTable | None = None) -> dict[str, dict[str, Any]]:
    """Every document by file name."""
    return {
        "auth.yaml": auth_document(),
        "main.yaml": main_document(table),
        "logic.yaml": logic_document(),
    }


def render(name: str, document: Mapping[str, Any]) -> str:
    header = (
        f"# docs/openapi/{name}: generated by `uv run python -m tggate.contract.openapi`.\n"
        "# Do not edit by hand: change the code it is made from (see docs/contract.md).\n"
    )
    body = yaml.safe_dump(
        dict(document), sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    return header + str(body)


def write(folder: Path, *, check: bool = False, table: CommandTable | None = None) -> list[str]:
    """Write every document into `folder` (or, with `check`, only compare); the names of the
    files that were (or would be) changed. `table` gives main.yaml's actions (default: the
    bundled table)."""
    changed: list[str] = []
    for name, document in documents(table).items():
        path = folder / name
        text = render(name, document)
        if path.exists() and path.read_text("utf-8") == text:
            continue
        changed.append(name)
        if not check:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tggate.contract.openapi", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/openapi"), help="the folder (default: docs/openapi)"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is out of date"
    )
    parser.add_argument(
        "--commands",
        type=Path,
        default=None,
        help="a command table (TOML) whose actions main.yaml lists (default: the bundled one)",
    )
    options = parser.parse_args(argv)
    try:
        table = load_command_table(options.commands) if options.commands else None
    except CommandTableError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    changed = write(options.out, check=options.check, table=table)
    for name in changed:
        print(f"{options.out / name}: {'out of date' if options.check else 'written'}")
    return 1 if options.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
