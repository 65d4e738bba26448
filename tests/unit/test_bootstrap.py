"""The settings → options conversions of the one bootstrap."""

from __future__ import annotations

from pathlib import Path

from tggate.bootstrap import client_options
from tggate.settings import load_settings


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
