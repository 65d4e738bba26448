"""The settings object: what a bad value says, and the reference made from the fields."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tggate.settings import SettingsError, load_settings, settings_table, variables


def test_a_log_level_in_lower_case_is_accepted() -> None:
    assert load_settings(log_level="debug").log_level == "DEBUG"


def test_an_unknown_log_level_is_one_line_naming_the_variable() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(log_level="LOUD")
    assert str(refused.value) == (
        "TGGATE_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"
    )


class _Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    limit: int = Field(default=3, ge=1, le=9, description="how many | at most")
    name: str | None = Field(default=None, description="a name")


def test_the_reference_shows_name_default_bounds_and_meaning() -> None:
    (limit, name) = variables(_Example)
    assert (limit.name, limit.default, limit.allowed) == ("EXAMPLE_LIMIT", "3", "integer, ≥ 1, ≤ 9")
    assert (name.name, name.default, name.literal_default) == ("EXAMPLE_NAME", "unset", False)
    assert settings_table(_Example).splitlines() == [
        "| variable | default | allowed | meaning |",
        "|---|---|---|---|",
        "| `EXAMPLE_LIMIT` | `3` | integer, ≥ 1, ≤ 9 | how many \\| at most |",
        "| `EXAMPLE_NAME` | unset | text | a name |",
    ]


def test_a_command_refuses_to_start_without_what_it_requires() -> None:
    nothing = load_settings(internal_token="", bot_token="")
    with pytest.raises(SettingsError, match=r"^TGGATE_INTERNAL_TOKEN is not set \(the shared"):
        nothing.check_required("logic")
    no_bot = load_settings(internal_token="a-shared-secret", bot_token="")
    no_bot.check_required("logic")
    with pytest.raises(SettingsError, match=r"^TGGATE_BOT_TOKEN is not set \(the bot's token"):
        no_bot.check_required("client")
    load_settings(internal_token="a-shared-secret", bot_token="1:token").check_required("client")
    nothing.check_required("demo")  # the sandbox's commands require none of these


def test_paid_broadcasts_are_off_or_above_the_free_rate() -> None:
    assert load_settings(send_paid_broadcast_per_s=0).send_paid_broadcast_per_s == 0
    assert load_settings(send_paid_broadcast_per_s=1000).send_paid_broadcast_per_s == 1000
    with pytest.raises(SettingsError, match=r"TGGATE_SEND_PAID_BROADCAST_PER_S: .*above"):
        load_settings(send_global_per_s=30, send_paid_broadcast_per_s=20)
    with pytest.raises(SettingsError, match="TGGATE_SEND_PAID_BROADCAST_PER_S"):
        load_settings(send_paid_broadcast_per_s=5000)  # beyond Telegram's 1,000
