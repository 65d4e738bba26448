"""Several intake replicas over one Redis, against the fake Telegram and a stand-in Bot Logic:
every chat in order and each update once whichever replica got it, a dead replica's chats taken
over, a stopped one's let go at once, Telegram's limits kept by all replicas together, the timers
ticking on one replica, and replies as in polling mode (C5, buttons)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from tests.integration.client.conftest import PersonApi, eventually
from tests.integration.client.stub_logic import Json, StubLogic
from tests.integration.intake.conftest import Replica, delivered_updates, running_intake

from tggate.core.texts import Text, say
from tggate.intake.base import Stored

STILL_TRYING = say(Text.STILL_TRYING, "en")


async def test_two_replicas_each_chat_in_order_each_update_once(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    rng = random.Random(10)
    stub.delay_s = lambda body: rng.uniform(0, 0.01)
    chats = range(100, 120)
    await person.inject_many([(chat, f"/course c{n}") for n in range(10) for chat in chats])
    updates = await delivered_updates(person, telegram_url)
    async with (
        running_intake(redis_url, telegram_url, logic_url, instance="a") as a,
        running_intake(redis_url, telegram_url, logic_url, instance="b") as b,
    ):
        # Consecutive updates of a chat land on different replicas, as nginx may spread them.
        for index, update in enumerate(updates):
            assert await (a, b)[index % 2].accept(update) in (Stored.STORED, Stored.QUEUED)
        for chat in chats:
            texts = [m["text"] for m in await person.wait(chat, 10, timeout_s=30)]
            assert texts == [f"echo /course c{n}" for n in range(10)]
        handled = a.counter("tggate_intake_updates_total", result="done")
        handled += b.counter("tggate_intake_updates_total", result="done")
    calls = Counter(command["update_id"] for command in stub.snapshot())
    assert sorted(calls) == sorted(u.update_id for u in updates)
    assert set(calls.values()) == {1}  # each update forwarded once
    assert handled == len(updates)


async def test_a_repeated_delivery_is_answered_once(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    await person.inject_many([(7, "/course once"), (7, "/course twice")])
    first, second = await delivered_updates(person, telegram_url)
    async with (
        running_intake(redis_url, telegram_url, logic_url, instance="a") as a,
        running_intake(redis_url, telegram_url, logic_url, instance="b") as b,
    ):
        assert await a.accept(first) is Stored.STORED
        assert await b.accept(first) is Stored.REPEAT  # Telegram did not see the first 200
        await person.wait(7, 1)
        assert await a.accept(first) is Stored.REPEAT  # long handled
        await b.accept(second)
        texts = [m["text"] for m in await person.wait(7, 2)]
    assert texts == ["echo /course once", "echo /course twice"]
    assert await person.bot_texts(7) == texts
    assert [c["update_id"] for c in stub.snapshot()] == [first.update_id, second.update_id]


async def test_a_dead_replicas_chats_are_taken_over_in_order(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    stub.delay_s = lambda body: 0.05
    chats = range(200, 210)
    await person.inject_many([(chat, f"/course c{n}") for n in range(5) for chat in chats])
    updates = await delivered_updates(person, telegram_url)
    async with (
        running_intake(redis_url, telegram_url, logic_url, instance="a") as a,
        running_intake(redis_url, telegram_url, logic_url, instance="b") as b,
    ):
        for update in updates:
            await a.accept(update)  # a takes every chat as it stores their first update
        await person.wait(chats[0], 1)  # a is at work
        await a.die()
        for chat in chats:
            texts = [m["text"] for m in await person.wait(chat, 5, timeout_s=30)]
            # A reply sent just before the death may come again (the first after the takeover).
            firsts = [t for i, t in enumerate(texts) if t not in texts[:i]]
            assert firsts[:5] == [f"echo /course c{n}" for n in range(5)]
        assert b.counter("tggate_intake_claims_total", how="taken_over") > 0
    sent = {chat: await person.bot_texts(chat) for chat in chats}
    assert all(len(texts) - len(set(texts)) <= 1 for texts in sent.values()), sent


async def test_a_stopped_replica_lets_its_chats_go_at_once(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    stub.delay_s = lambda body: 0.05
    chats = range(300, 310)
    await person.inject_many([(chat, f"/course c{n}") for n in range(4) for chat in chats])
    updates = await delivered_updates(person, telegram_url)
    # Claims that would take a minute to lapse: only letting go hands the chats over in time.
    async with running_intake(
        redis_url, telegram_url, logic_url, instance="b", claim_ttl_s=60
    ) as b:
        async with running_intake(
            redis_url, telegram_url, logic_url, instance="a", claim_ttl_s=60
        ) as a:
            for update in updates:
                await a.accept(update)
            await person.wait(chats[0], 1)
        # a stopped: it finished the update in hand of each chat and let the chats go.
        for chat in chats:
            texts = [m["text"] for m in await person.wait(chat, 4, timeout_s=20)]
            assert texts == [f"echo /course c{n}" for n in range(4)]
        assert b.counter("tggate_intake_claims_total", how="taken_over") == 0
        assert b.counter("tggate_intake_claims_total", how="idle") > 0
    assert len(stub.snapshot()) == len(updates)


async def test_telegrams_limits_are_kept_by_all_replicas_together(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    person: PersonApi,
) -> None:
    # Telegram allowing 10 messages/s overall and one per 0.2 s per chat; each replica sends at
    # those rates, so without sharing them two replicas would send twice as fast.
    await person.configure(rate_limits=True, global_per_s=10, per_chat_per_s=5)
    many = [(chat, "/course one") for chat in range(400, 426)]
    busy = [(499, f"/course n{n}") for n in range(6)]
    await person.inject_many(many + busy)
    updates = await delivered_updates(person, telegram_url)
    limits: dict[str, Any] = {"send_global_per_s": 10.0, "send_per_chat_interval_s": 0.2}
    async with (
        running_intake(redis_url, telegram_url, logic_url, instance="a", **limits) as a,
        running_intake(redis_url, telegram_url, logic_url, instance="b", **limits) as b,
    ):
        for index, update in enumerate(updates):
            await (a, b)[index % 2].accept(update)
        for chat, _ in many:
            await person.wait(chat, 1, timeout_s=30)
        await person.wait(499, 6, timeout_s=30)
    stats = await person.stats()
    assert stats["rate_limited"] == 0, "Telegram answered 429: the replicas sent too fast"
    assert stats["calls"]["sendMessage"] == len(updates)


async def test_the_timers_tick_on_one_replica(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    chats = list(range(500, 540))
    await person.inject_many([(chat, "hi") for chat in chats])  # the chats exist at Telegram
    await delivered_updates(person, telegram_url)  # (and are not delivered to the replicas)
    stub.outbox["notifications"] = [
        {"id": f"n{chat}", "chat_id": chat, "text": f"news for {chat}", "buttons": []}
        for chat in chats
    ]
    async with (
        running_intake(redis_url, telegram_url, logic_url, instance="a"),
        running_intake(redis_url, telegram_url, logic_url, instance="b"),
    ):
        for chat in chats:
            await person.wait(chat, 1)
        await eventually(lambda: not stub.outbox["notifications"])
        # One more message, delivered and acknowledged by a later tick: a second timer's tick
        # that had fetched the first ones before they were acknowledged is over by then.
        with stub.lock:
            stub.outbox["notifications"].append(
                {"id": "last", "chat_id": chats[0], "text": "last", "buttons": []}
            )
        await person.wait(chats[0], 2)
        await eventually(lambda: not stub.outbox["notifications"])
    assert await person.bot_texts(chats[0]) == [f"news for {chats[0]}", "last"]
    for chat in chats[1:]:
        assert await person.bot_texts(chat) == [f"news for {chat}"]
    holders = {request["instance"] for request in stub.lease_requests}
    assert holders == {"a", "b"}  # both asked; one held it


async def test_replies_as_in_polling_mode_C5_and_buttons(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    def reply(body: Json) -> list[Json]:
        button = {"text": "Again", "command": "/course again"}
        return [{"chat_id": body["chat_id"], "text": f"echo {body['text']}", "buttons": [[button]]}]

    stub.reply = reply
    async with running_intake(redis_url, telegram_url, logic_url, instance="a") as a:
        await person.inject(600, "hello there", language_code="en")
        await person.inject(600, "/course py101", language_code="en")
        for update in await delivered_updates(person, telegram_url):
            await a.accept(update)
        no_such, echoed = await person.wait(600, 2)
        assert no_such["text"] == "No such command"
        assert echoed["text"] == "echo /course py101"
        await person.press(600, echoed["message_id"], "/course again")
        for update in await delivered_updates(person, telegram_url):
            await a.accept(update)
        messages = await person.wait(600, 3)
    assert messages[-1]["text"] == "echo /course again"
    assert [c["answered"] for c in await person.callbacks()] == [True]
    assert [c["command"] for c in stub.snapshot()] == ["course", "course"]


async def test_C4_a_command_for_another_bot_is_not_ours_to_answer(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    """Issue 9, finding 6, in webhook mode too: a replica asks Telegram its own name (getMe)
    before working the queues, so `/course@other_bot` in a group gets no answer at all."""

    def reply(body: Json) -> list[Json]:
        return [{"chat_id": body["chat_id"], "text": f"echo {body['text']}", "buttons": []}]

    stub.reply = reply
    async with running_intake(redis_url, telegram_url, logic_url, instance="a") as a:
        await person.inject(601, "/course@other_bot py101")
        await person.inject(601, "/nosuch@Other_Bot")
        await person.inject(601, "/course@TGGATE_bot py102")  # ours, in any case
        for update in await delivered_updates(person, telegram_url):
            await a.accept(update)
        # One chat's updates are handled in order: once the last is answered, all were.
        assert [m["text"] for m in await person.wait(601, 1)] == ["echo /course@TGGATE_bot py102"]
        assert await person.bot_texts(601) == ["echo /course@TGGATE_bot py102"]
    assert [call["args"] for call in stub.snapshot()] == [{"course_id": "py102"}]


async def test_an_answer_marked_retry_keeps_the_update_queued_until_it_is_answered(
    redis_url: str,
    redis_client: Redis,
    telegram_url: str,
    logic_url: str,
    stub: StubLogic,
    person: PersonApi,
) -> None:
    """Issue 9, webhook mode: Bot Logic's "not done, offer it again" (200 + retry, its Redis
    down) is not the answer: the update stays in its chat's queue and is asked again, the person
    reads the delay notice once, then the answer (docs/contract.md#bot-logic)."""
    stub.not_done.set()
    async with running_intake(
        redis_url, telegram_url, logic_url, instance="a", unavailable_notice_after_s=0.2
    ) as a:
        update_id = await person.inject(610, "/course py101", language_code="en")
        for update in await delivered_updates(person, telegram_url):
            await a.accept(update)
        assert [m["text"] for m in await person.wait(610, 1)] == [STILL_TRYING]
        await eventually(lambda: len(stub.calls_for(update_id)) >= 3)  # asked again, and again
        assert (await a.queue.backlog()).updates == 1  # still kept
        stub.not_done.clear()
        texts = [m["text"] for m in await person.wait(610, 2)]
        await eventually(lambda: _queue_empty(a))
    assert texts == [STILL_TRYING, "echo /course py101"]
    assert await person.bot_texts(610) == texts  # neither the notice nor the answer twice


async def _queue_empty(replica: Replica) -> bool:
    return (await replica.queue.backlog()).updates == 0
