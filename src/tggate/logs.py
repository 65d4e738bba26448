"""Structured (JSON lines) logging with secrets redacted before anything is written.

Redaction covers every text a record carries: the message with its arguments, the exception's
trace (an exception's message may quote a token), and a stack; it runs on the texts before
they are JSON-encoded, so a secret with a quote or a backslash in it is found too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable

__all__ = ["configure_logging", "redact"]

_PATTERNS = (
    # JWTs (access and refresh tokens).
    re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}"),
    # Telegram bot tokens ("123456:AA…"), alone and inside Bot API URLs.
    re.compile(r"\b\d{5,}:[\w-]{30,}\b"),
    re.compile(r"(?i)(bot)\d{5,}:[\w-]+"),
    # Login tokens: `secrets.token_urlsafe(32)`, 43 URL-safe characters (issue 9).
    re.compile(r"(?<![\w-])[A-Za-z0-9_-]{43}(?![\w-])"),
    # Fernet tokens: a sealed value (the "f1:" mark of tggate.adapters.token_cipher) or a key.
    re.compile(r"gAAAAA[\w=-]{20,}"),
)
# The password in a URL ("redis://:secret@host", "https://user:secret@host"); the rest is kept.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    text = _URL_PASSWORD.sub(r"\1[redacted]@", text)
    for pattern in _PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class _JsonFormatter(logging.Formatter):
    def __init__(self, *, component: str, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._component = component
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self._component,
            "logger": record.name,
            "msg": self._redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["trace"] = self._redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self._redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)


def configure_logging(*, component: str, level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """JSON lines on stderr for every logger, uvicorn's included."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter(component=component, secrets=tuple(secrets)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
