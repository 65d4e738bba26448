"""The secrets tests run the sandbox servers with, and the headers that carry them (issue 9).

The sandbox's test APIs are off unless a server gets a test API secret, and then every call
carries it; the reference Main module's admin API wants its admin secret. Tests that build the
apps in-process use these; tests of a `Topology` use `topology.test_api_headers` instead.
"""

from __future__ import annotations

from tggate_sandbox.hardening import ADMIN_HEADER, TEST_API_HEADER

__all__ = ["ADMIN", "ADMIN_SECRET", "TEST_API", "TEST_API_SECRET"]

TEST_API_SECRET = "tests-test-api-secret-0123456789abcdef"
TEST_API = {TEST_API_HEADER: TEST_API_SECRET}
ADMIN_SECRET = "tests-admin-secret-0123456789abcdefghij"
ADMIN = {ADMIN_HEADER: ADMIN_SECRET}
