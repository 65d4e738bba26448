"""A fake Telegram Bot API (docs/contract.md#reference): real getUpdates semantics, api.json
validation, a test API."""

from tggate_sandbox.fakes.telegram.app import create_app

__all__ = ["create_app"]
