"""The Telegram Client end to end against the fake Telegram and a stand-in Bot Logic:
C1–C7 for messages and buttons, order, at-least-once, splitting, 429s, shutdown."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.integration.client.conftest import PersonApi, eventually, running_client
from tests.integration.client.stub_logic import StubLogic

from tggate.core.texts import Text, say

STILL_TRYING = say(Text.STILL_TRYING, "en")


async def test_C5_unknown_text_is_answered_locally(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    async with running_client(telegram_url, logic_url):
        await person.inject(1, "hello there")
        await person.inject(2, "/nosuch", language_code="en")
        await person.inject(3, "/course", language_code="ru")  # known command, bad arguments
        assert [m["text"] for m in await person.wait(1, 1)] == ["Нет такой команды"]
        assert [m["text"] for m in await person.wait(2, 1)] == ["No such command"]
        assert [m["text"] for m in await person.wait(3, 1)] == [
            "Неверные аргументы: /course <course_id>"
        ]
    assert stub.snapshot() == []


async def test_C6_commands_are_forwarded_with_their_args_and_language(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    async with running_client(telegram_url, logic_url):
        first = await person.inject(42, "/login github", language_code="en-US")
        second = await person.inject(42, "/logout ALL=true")
        third = await person.inject(42, "/course py101", language_code="ru")
        texts = [m["text"] for m in await person.wait(42, 3)]
    assert texts == ["echo /login github", "echo /logout ALL=true", "echo /course py101"]
    tester = {"first_name": "Tester", "last_name": None, "username": None}
    assert stub.snapshot() == [
        {
            "update_id": first,
            "chat_id": 42,
            "command": "login",
            "args": {"type": "github"},
            "text": "/login github",
            "language": "en",
            "telegram_user": tester,
        },
        {
            "update_id": second,
            "chat_id": 42,
            "command": "logout",
            "args": {"all": "true"},
            "text": "/logout ALL=true",
            # The fake remembers the chat's language_code (en-US) from the first message.
            "language": "en",
            "telegram_user": None,  # only a login needs to say who asks
        },
        {
            "update_id": third,
            "chat_id": 42,
            "command": "course",
            "args": {"course_id": "py101"},
            "text": "/course py101",
            "language": "ru",
            "telegram_user": None,
        },
    ]
    assert stub.unauthorized == 0


async def test_C6_the_sender_is_named_as_telegram_names_them(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    """Issue 9, finding 8: the confirmation page shows who asks, so the client passes it on."""
    async with running_client(telegram_url, logic_url):
        await person.inject(
            43, "/login code", first_name="<b>Ann</b>", last_name="O'Neil", username="ann_o"
        )
        await person.wait(43, 1)
    (call,) = stub.snapshot()
    assert call["telegram_user"] == {
        "first_name": "<b>Ann</b>",
        "last_name": "O'Neil",
        "username": "ann_o",
    }


async def test_C4_a_command_for_another_bot_is_not_ours_to_answer(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    """Issue 9, finding 6: in a group `/course@other_bot` is for that bot; this client asked
    Telegram its own name (getMe) and stays silent, not even "no such command"."""
    async with running_client(telegram_url, logic_url):
        await person.inject(44, "/course@other_bot py101")
        await person.inject(44, "/nosuch@Other_Bot")
        await person.inject(44, "/course@TGGATE_bot py102")  # ours, in any case
        # One chat's updates are handled in order: once the last is answered, all were.
        assert [m["text"] for m in await person.wait(44, 1)] == ["echo /course@TGGATE_bot py102"]
        assert await person.bot_texts(44) == ["echo /course@TGGATE_bot py102"]
    assert [call["args"] for call in stub.snapshot()] == [{"course_id": "py102"}]


async def test_C3_each_chat_in_order_chats_in_parallel(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    rng = random.Random(3)
    stub.delay_s = lambda body: rng.uniform(0, 0.02)
    chats = range(100, 110)
    messages = [(chat, f"/course c{n}") for n in range(20) for chat in chats]
    async with running_client(telegram_url, logic_url):
        await person.inject_many(messages)
        for chat in chats:
            texts = [m["text"] for m in await person.wait(chat, 20, timeout_s=30)]
            assert texts == [f"echo /course c{n}" for n in range(20)]
    assert len(stub.snapshot()) == 200  # each update handled once
    stats = await person.stats()
    assert stats["pending_updates"] == 0


async def test_offset_is_confirmed_only_after_the_reply(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    update_id = 1  # the fake numbers updates from 1
    stub.failures[update_id] = [503, 503]
    async with running_client(telegram_url, logic_url):
        assert await person.inject(7, "/help") == update_id
        # While Bot Logic fails, the update stays unconfirmed at Telegram.
        await eventually(lambda: len(stub.calls_for(update_id)) >= 1)
        assert (await person.stats())["pending_updates"] == 1
        assert [m["text"] for m in await person.wait(7, 1)] == ["echo /help"]
    stats = await person.stats()
    assert stats["pending_updates"] == 0  # confirmed by the end
    assert len(stub.calls_for(update_id)) == 3  # 503, 503, answer: same update_id each time
    assert await person.bot_texts(7) == ["echo /help"]  # exactly once


async def test_an_answer_marked_retry_is_offered_again_not_sent(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    """Issue 9: Bot Logic's "not done, offer it again" (200 + retry, its Redis down) is not the
    answer: the update stays unconfirmed and is asked again, the person reads the delay notice
    once, then the answer (docs/contract.md#bot-logic)."""
    update_id = 1
    stub.not_done.set()
    async with running_client(telegram_url, logic_url, unavailable_notice_after_s=0.2):
        assert await person.inject(7, "/help", language_code="en") == update_id
        assert [m["text"] for m in await person.wait(7, 1)] == [STILL_TRYING]
        await eventually(lambda: len(stub.calls_for(update_id)) >= 3)  # asked again, and again
        assert (await person.stats())["pending_updates"] == 1
        stub.not_done.clear()
        texts = [m["text"] for m in await person.wait(7, 2)]
        await eventually(lambda: _confirmed(person))
    assert texts == [STILL_TRYING, "echo /help"]
    assert await person.bot_texts(7) == texts  # neither the notice nor the answer twice


async def _confirmed(person: PersonApi) -> bool:
    return (await person.stats())["pending_updates"] == 0


async def test_a_4xx_from_bot_logic_gets_a_generic_reply_and_is_not_retried(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    stub.failures[1] = [422]
    async with running_client(telegram_url, logic_url):
        await person.inject(7, "/help", language_code="en")
        await person.inject(7, "/start", language_code="en")
        texts = [m["text"] for m in await person.wait(7, 2)]
    assert texts == ["Something went wrong. Please try again later.", "echo /start"]
    assert len(stub.calls_for(1)) == 1


async def test_a_button_press_is_answered_and_forwarded(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    def reply(body: dict[str, Any]) -> list[dict[str, Any]]:
        buttons = [
            [{"text": "GitHub", "url": "https://github.com/login/oauth/authorize?x=1"}],
            [{"text": "Код", "command": "/login code"}],
        ]
        return [{"chat_id": body["chat_id"], "text": f"re {body['text']}", "buttons": buttons}]

    stub.reply = reply
    async with running_client(telegram_url, logic_url):
        await person.inject(5, "/login")
        [offer] = await person.wait(5, 1)
        assert offer["reply_markup"] == {
            "inline_keyboard": [
                [{"text": "GitHub", "url": "https://github.com/login/oauth/authorize?x=1"}],
                [{"text": "Код", "callback_data": "/login code"}],
            ]
        }
        await person.press(5, offer["message_id"], "/login code")
        texts = [m["text"] for m in await person.wait(5, 2)]
        assert texts == ["re /login", "re /login code"]
        await eventually(lambda: _answered(person))
    forwarded = stub.snapshot()[-1]
    assert (forwarded["command"], forwarded["args"], forwarded["text"]) == (
        "login",
        {"type": "code"},
        "/login code",
    )


async def _answered(person: PersonApi) -> bool:
    callbacks = await person.callbacks()
    return len(callbacks) == 1 and callbacks[0]["answered"] is True


async def test_a_long_reply_is_split_at_line_breaks(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    lines = [f"{i:04d}" + " строка" * 12 for i in range(150)]
    long_text = "\n".join(lines)
    assert 3 * 4096 < len(long_text) < 4 * 4000
    stub.reply = lambda body: [{"chat_id": body["chat_id"], "text": long_text}]
    async with running_client(telegram_url, logic_url):
        await person.inject(9, "/help")
        messages = await person.wait(9, 4)
    texts = [m["text"] for m in messages]
    assert len(texts) == 4
    assert all(len(t) <= 4096 for t in texts)
    assert "\n".join(texts).split("\n") == lines


async def test_a_429_is_honoured_for_that_chat_only(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    # The client is told to send as fast as it likes, so the fake's 1 message/s per chat trips.
    await person.configure(rate_limits=True, per_chat_per_s=1, global_per_s=30)
    async with running_client(telegram_url, logic_url, send_per_chat_interval_s=0.0):
        for n in range(3):
            await person.inject(1, f"/course a{n}")
        await person.wait(1, 1)
        await person.inject(2, "/course b0")
        # Chat 2 is not held up by chat 1's retry_after.
        assert [m["text"] for m in await person.wait(2, 1, timeout_s=0.9)] == ["echo /course b0"]
        assert len(await person.bot_texts(1)) < 3
        texts = [m["text"] for m in await person.wait(1, 3, timeout_s=10)]
        assert texts == [f"echo /course a{n}" for n in range(3)]
    stats = await person.stats()
    assert stats["rate_limited"] >= 1
    assert stats["retry_after_violations"] == 0


async def test_within_the_limits_there_are_no_429s(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    await person.configure(rate_limits=True, per_chat_per_s=5, global_per_s=30)
    async with running_client(
        telegram_url, logic_url, send_per_chat_interval_s=0.2, send_global_per_s=30.0
    ):
        chats = range(1, 21)
        await person.inject_many([(chat, f"/course n{n}") for n in range(4) for chat in chats])
        for chat in chats:
            await person.wait(chat, 4, timeout_s=20)
    stats = await person.stats()
    assert stats["rate_limited"] == 0


async def test_shutdown_finishes_the_update_in_flight_and_confirms_it(
    telegram_url: str, logic_url: str, stub: StubLogic, person: PersonApi
) -> None:
    stub.answering.clear()  # Bot Logic works on the command until the test lets it answer
    async with running_client(telegram_url, logic_url) as running:
        await person.inject(3, "/help")
        await eventually(lambda: stub.snapshot())
        running.stop.set()  # while Bot Logic is still working on it
        stub.answering.set()
        async with asyncio.timeout(60):  # ends a hopeless wait only (the grace is 5 s)
            await running.task
        assert await person.bot_texts(3) == ["echo /help"]
    stats = await person.stats()
    assert stats["pending_updates"] == 0


async def test_the_command_menu_is_published_in_russian_and_english(
    telegram_url: str, logic_url: str, person: PersonApi
) -> None:
    async with running_client(telegram_url, logic_url):
        await eventually(lambda: _menu_published(person))
    commands = (await person.stats())["commands"]
    [by_language] = commands.values()
    assert set(by_language) == {"", "ru", "en"}
    assert [c["command"] for c in by_language[""]] == [
        "start",
        "help",
        "login",
        "logout",
        "me",
        "course",
    ]
    assert by_language[""] == by_language["ru"]
    assert by_language["en"][-1] == {"command": "course", "description": "Course"}


async def _menu_published(person: PersonApi) -> bool:
    commands = (await person.stats())["commands"]
    return any(len(by_language) == 3 for by_language in commands.values())
