"""Telegram Client: long-polls the Bot API, forwards commands to Bot Logic, sends replies, runs the
login-check and notification timers (docs/scenarios.md#components, C1–C7, L1, N1)."""

from tggate.client.service import ClientOptions, TelegramClient

__all__ = ["ClientOptions", "TelegramClient"]
