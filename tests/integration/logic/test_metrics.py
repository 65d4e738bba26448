"""Bot Logic's metrics the Grafana dashboard (deploy/grafana/) draws: module call latency and the
outbox backlog, read from /metrics of a real Bot Logic on real Redis and the reference modules."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tests.integration.logic.conftest import Bot


async def _sample(bot: Bot, name: str, **labels: str) -> float:
    text = (await bot.logic.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_module_calls_are_timed_per_module(bot: Bot, chat: int) -> None:
    await bot.login(chat)
    calls = await _sample(bot, "tggate_module_call_seconds_count", module="main")
    seconds = await _sample(bot, "tggate_module_call_seconds_sum", module="main")
    await bot.main.post("/test/delay", json={"seconds": 0.2})
    await bot.command(chat, "courses")
    assert await _sample(bot, "tggate_module_call_seconds_count", module="main") == calls + 1
    # The delay is a lower bound of what was measured, never an upper one.
    assert await _sample(bot, "tggate_module_call_seconds_sum", module="main") >= seconds + 0.2
    assert await _sample(bot, "tggate_module_call_seconds_count", module="auth") >= 2


async def test_the_outbox_backlog_is_what_the_last_tick_handed_out(bot: Bot, chat: int) -> None:
    await bot.command(chat, "login", {"type": "code"})
    await bot.resolve(chat, "granted")
    handed_out = await bot.cycle("login", shard=0, shards=1)
    assert any(m["chat_id"] == chat for m in handed_out)
    backlog = await _sample(bot, "tggate_outbox_backlog_messages", cycle="login", shard="0")
    assert backlog == len(handed_out) >= 1
    acknowledged = await bot.logic.post(
        "/v1/messages/ack", json={"ids": [m["id"] for m in handed_out]}
    )
    assert acknowledged.status_code == 200
    after = await bot.cycle("login", shard=0, shards=1)
    assert not any(m["chat_id"] == chat for m in after)
    assert await _sample(bot, "tggate_outbox_backlog_messages", cycle="login", shard="0") == len(
        after
    )


async def test_commands_and_module_calls_are_counted_by_result_each_time(
    bot: Bot, chat: int
) -> None:
    """Issue 11 looks each labelled counter up once: every count still lands, under its own
    labels."""
    offered = {"command": "me", "result": "unknown->unknown"}
    done = {"command": "me", "result": "authorized->authorized"}
    action = {"request": "action", "result": "200"}
    before = [await _sample(bot, "tggate_commands_total", **labels) for labels in (offered, done)]
    calls = await _sample(bot, "tggate_module_calls_total", **action)
    await bot.command(chat, "me")
    await bot.login(chat)
    for _ in range(3):
        await bot.command(chat, "me")
    assert await _sample(bot, "tggate_commands_total", **offered) == before[0] + 1
    assert await _sample(bot, "tggate_commands_total", **done) == before[1] + 3
    assert await _sample(bot, "tggate_module_calls_total", **action) == calls + 3
