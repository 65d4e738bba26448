"""The settings → options conversions of the one bootstrap."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tggate.adapters.token_cipher import TokenCipher
from tggate.bootstrap import build_logic_app, client_options
from tggate.settings import SettingsError, load_settings


def test_client_options_come_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        bot_token="123456:the-secret-part",
        data_dir=str(tmp_path),
        max_concurrent_chats=7,
        cycle_shards=3,
        send_global_per_s=20.0,
        send_group_per_minute=10,
        send_paid_broadcast_per_s=500.0,
    )
    options = client_options(settings)
    assert (options.max_concurrent_chats, options.cycle_shards) == (7, 3)
    assert options.send_global_per_s == 20.0
    assert (options.send_group_per_minute, options.send_paid_broadcast_per_s) == (10, 500.0)
    # One journal per bot, named by its public id, never by the token's secret part.
    assert options.journal_path == tmp_path / "client-123456-deliveries.log"


def test_a_token_without_a_numeric_id_gets_a_generic_journal(tmp_path: Path) -> None:
    options = client_options(load_settings(bot_token="not-a-token", data_dir=str(tmp_path)))
    assert options.journal_path == tmp_path / "client-bot-deliveries.log"


def test_no_session_keys_is_a_warning_naming_the_variable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9, finding 10: tokens stored in plaintext used to be silent."""
    with caplog.at_level(logging.WARNING, logger="tggate.bootstrap"):
        build_logic_app(load_settings(internal_token="t" * 16), redis_url="redis://unused")
    (warning,) = [r for r in caplog.records if r.name == "tggate.bootstrap"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith("TGGATE_SESSION_KEYS is not set")
    assert "plaintext" in warning.getMessage()

    caplog.clear()
    keyed = load_settings(internal_token="t" * 16, session_keys=TokenCipher.generate_key())
    with caplog.at_level(logging.WARNING, logger="tggate.bootstrap"):
        build_logic_app(keyed, redis_url="redis://unused")
    assert [r for r in caplog.records if r.name == "tggate.bootstrap"] == []


def test_bulk_notifications_refuse_to_start_without_the_service_token() -> None:
    """Issue 11.5: the bulk mode without its credential stops at start-up, in one line."""
    bulk = load_settings(internal_token="t" * 16, notification_mode="bulk")
    with pytest.raises(SettingsError, match=r"^TGGATE_MAIN_SERVICE_TOKEN is not set \(") as refused:
        build_logic_app(bulk, redis_url="redis://unused")
    assert "\n" not in str(refused.value)
    with_token = load_settings(
        internal_token="t" * 16, notification_mode="bulk", main_service_token="s" * 32
    )
    build_logic_app(with_token, redis_url="redis://unused")
    assert "s" * 32 in with_token.secrets()  # redacted from logs like every secret
