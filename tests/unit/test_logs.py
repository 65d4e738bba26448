"""Log redaction (tggate.logs): messages, their arguments and exception traces alike (issue 9).

A failure's message may quote what was sent: a token, a URL with a password. The formatted
line is what an operator's log store keeps, so that is what is checked."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator

import pytest

from tggate.adapters.token_cipher import TokenCipher
from tggate.logs import configure_logging, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTl9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
BOT_TOKEN = "123456789:AAH-0123456789abcdefghijklmnopqrstuv"
LOGIN_TOKEN = secrets.token_urlsafe(32)
REDIS_PASSWORD = "correct-horse-battery"  # an operator's own, in TGGATE_REDIS_URL
REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"
INTERNAL_TOKEN = 'in"ternal\\secret'  # JSON escapes both: redaction must come first
SEALED = TokenCipher([TokenCipher.generate_key()]).seal_text("a refresh token")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON handler writes, for the duration of the test; logging restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(component="test", secrets=[INTERNAL_TOKEN])
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


SECRETS = (JWT, BOT_TOKEN, LOGIN_TOKEN, REDIS_PASSWORD, INTERNAL_TOKEN, SEALED)


def _entries(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_exception_trace_is_redacted(lines: io.StringIO) -> None:
    log = logging.getLogger("tggate.test")
    try:
        raise RuntimeError(
            f"refresh {JWT} failed for bot{BOT_TOKEN} with login {LOGIN_TOKEN} "
            f"on {REDIS_URL}; header {INTERNAL_TOKEN}; stored {SEALED}"
        )
    except RuntimeError:
        log.exception("a request failed")

    written = lines.getvalue()
    (entry,) = _entries(lines)
    assert entry["error"] == "RuntimeError"
    assert "RuntimeError: refresh [redacted] failed" in entry["trace"]
    assert "redis://:[redacted]@127.0.0.1:6379/0" in entry["trace"]  # where, not the password
    for secret in SECRETS:
        assert secret not in written
        assert json.dumps(secret)[1:-1] not in written  # nor its JSON-escaped form


def test_messages_and_their_arguments_are_redacted(lines: io.StringIO) -> None:
    logging.getLogger("tggate.test").warning(
        "login %s for %s at %s", LOGIN_TOKEN, JWT, REDIS_URL, stack_info=True
    )
    (entry,) = _entries(lines)
    assert entry["msg"] == "login [redacted] for [redacted] at redis://:[redacted]@127.0.0.1:6379/0"
    assert "stack" in entry
    for secret in SECRETS:
        assert secret not in lines.getvalue()


def test_ordinary_words_and_ids_are_kept() -> None:
    text = "chat 42 update 1000123 rev 3f2a9c1b7d4e5f60 /api/courses/py101 redis://127.0.0.1:6379/0"
    assert redact(text) == text
