"""The headers that carry the sandbox's secrets, and how long a secret must be.

Apart from `hardening` (which re-exports them) because that module is FastAPI's edge: the demo's
supervisor and the settings need these three names only, and importing FastAPI for them cost the
demo a third of a second before it started anything (issue 11, item 7).
"""

from __future__ import annotations

__all__ = ["ADMIN_HEADER", "MIN_SECRET_BYTES", "TEST_API_HEADER"]

TEST_API_HEADER = "X-Test-Api-Secret"
# The reference Main module's admin API (POST /notifications) takes its admin secret here.
ADMIN_HEADER = "X-Admin-Secret"
# RFC 7518 §3.2 asks this of an HS256 key; every sandbox secret is held to it.
MIN_SECRET_BYTES = 32
