"""`tggate check-modules` through a configured API (TGGATE_AUTH_API_FILE): the two worked
examples of docs/integrate.md pass against modules of their shapes, and the check reads a
module in another shape only through its file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from tests.integration.conformance.modules import (
    JWT_SECRET,
    Modules,
    reference_modules,
    wrapped_in_auth,
)
from tests.integration.conformance.test_check_modules import JWT, options, verdicts
from tests.support.sandbox import ADMIN_SECRET
from tests.support.second_auth import API_DOCS_ANCHOR, create_second_auth, example_toml
from tests.support.servers import run_asgi

from tggate.adapters.auth_api import parse_auth_api
from tggate.conformance.run import check_modules
from tggate_sandbox.reference.main.app import create_app as create_main


@contextmanager
def second_module() -> Iterator[Modules]:
    with (
        run_asgi(create_second_auth(jwt_secret=JWT_SECRET)) as auth_url,
        run_asgi(create_main(jwt_secret=JWT_SECRET, admin_secret=ADMIN_SECRET)) as main_url,
    ):
        yield Modules(auth_url, main_url)


async def test_the_wrapped_example_passes_against_a_module_of_its_shape() -> None:
    api = parse_auth_api(example_toml("example-auth-wrapped"), source="wrapped.toml")
    out = io.StringIO()
    with reference_modules(auth_skin=wrapped_in_auth) as modules:
        status = await check_modules(options(modules.auth_url, modules.main_url, api=api), out)

    report = out.getvalue()
    assert status == 0, report
    assert all(line.startswith("PASS") for line in verdicts(report)), report
    assert "(its API: wrapped.toml)" in report
    assert not JWT.search(report)


async def test_without_its_file_the_second_module_fails_with_precise_lines() -> None:
    out = io.StringIO()
    with second_module() as modules:
        status = await check_modules(options(modules.auth_url, modules.main_url), out)

    report = out.getvalue()
    assert status == 1
    assert "FAIL  auth login (code): expected `started`, got HTTP 404, which is none of " in report
    assert "        request:  POST " + modules.auth_url + "/login" in report


async def test_the_token_refresh_example_passes_against_the_second_module() -> None:
    api = parse_auth_api(example_toml(API_DOCS_ANCHOR), source="token-refresh.toml")
    out = io.StringIO()
    with second_module() as modules:
        status = await check_modules(options(modules.auth_url, modules.main_url, api=api), out)

    report = out.getvalue()
    assert status == 0, report
    assert all(line.startswith("PASS") for line in verdicts(report)), report
    assert not JWT.search(report)
