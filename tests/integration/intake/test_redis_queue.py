"""The intake's queues on a real Redis (tggate.adapters.redis_intake): a chat's updates in order,
one claim per chat, repeats dropped, lapsed claims taken over, progress kept across hands."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tggate.adapters.redis_intake import IntakeKeys, RedisIntakeQueue
from tggate.intake.base import Claim, Entry, Stored

CHAT = 42


def entry(update_id: int, chat_id: int = CHAT) -> Entry:
    return Entry(chat_id=chat_id, update_id=update_id, payload=f'{{"u":{update_id}}}')


async def claim_when_lapsed(queue: RedisIntakeQueue, chat_id: int, token: str) -> Claim:
    """Claim the chat as soon as the holder's claim has lapsed (waits for that, bounded)."""
    async with asyncio.timeout(10):
        # Nothing announces a lapse: Redis' clock passing the claim's end is the event.
        while (claim := await queue.claim(chat_id, token=token)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return claim


@pytest.fixture
def queue(redis_client: Redis) -> RedisIntakeQueue:
    return RedisIntakeQueue(redis_client, claim_ttl_s=0.3, seen_keep=5, queue_limit=10)


async def test_a_chats_updates_come_out_in_order_under_one_claim(queue: RedisIntakeQueue) -> None:
    assert await queue.enqueue(entry(1)) is Stored.STORED
    assert await queue.enqueue(entry(2)) is Stored.QUEUED
    claim = await queue.claim(CHAT, token="a")
    assert claim is not None and claim.head == entry(1)
    assert await queue.enqueue(entry(3)) is Stored.QUEUED  # a held chat: no new start
    seen = []
    current: Claim | None = claim
    while current is not None:
        seen.append(current.head.update_id)
        current = await queue.done(current)
    assert seen == [1, 2, 3]
    assert (await queue.backlog()).updates == 0
    assert await queue.due(limit=10) == []
    # Empty and let go: the next update makes the chat idle-startable again.
    assert await queue.enqueue(entry(4)) is Stored.STORED


async def test_an_update_id_is_stored_once(queue: RedisIntakeQueue, redis_client: Redis) -> None:
    assert await queue.enqueue(entry(7)) is Stored.STORED
    assert await queue.enqueue(entry(7)) is Stored.REPEAT
    claim = await queue.claim(CHAT, token="a")
    assert claim is not None
    assert await queue.done(claim) is None
    # Handled and gone from the queue: still a repeat.
    assert await queue.enqueue(entry(7)) is Stored.REPEAT
    assert await redis_client.llen(queue.keys.queue(CHAT)) == 0


async def test_only_the_newest_update_ids_of_a_chat_are_remembered(
    queue: RedisIntakeQueue,
) -> None:
    for update_id in [9, 10, 11, 12, 13, 14, 15]:  # seen_keep=5: 9 and 10 are forgotten
        await queue.enqueue(entry(update_id))
    assert await queue.enqueue(entry(15)) is Stored.REPEAT
    assert await queue.enqueue(entry(11)) is Stored.REPEAT
    assert await queue.enqueue(entry(9)) is Stored.QUEUED  # stored again


async def test_a_chat_with_too_many_updates_waiting_is_refused(queue: RedisIntakeQueue) -> None:
    for update_id in range(1, 11):
        await queue.enqueue(entry(update_id))
    assert await queue.enqueue(entry(11)) is Stored.FULL
    assert await queue.enqueue(entry(11, chat_id=CHAT + 1)) is Stored.STORED
    assert (await queue.backlog()).updates == 11
    # Refused, not remembered: Telegram's next delivery of it is stored.
    claim = await queue.claim(CHAT, token="a")
    assert claim is not None
    await queue.done(claim)
    assert await queue.enqueue(entry(11)) is Stored.QUEUED


async def test_one_claim_at_a_time(queue: RedisIntakeQueue) -> None:
    await queue.enqueue(entry(1))
    first = await queue.claim(CHAT, token="a")
    assert first is not None and not first.taken_over
    assert await queue.claim(CHAT, token="b") is None
    assert await queue.due(limit=10) == []  # held: nobody else should look at it


async def test_a_lapsed_claim_is_taken_over_and_the_old_holder_is_refused(
    queue: RedisIntakeQueue,
) -> None:
    for update_id in (1, 2):
        await queue.enqueue(entry(update_id))
    old = await queue.claim(CHAT, token="a")
    assert old is not None
    assert await queue.record_sent(old, 1)  # one reply of update 1 went out, then "a" died
    new = await claim_when_lapsed(queue, CHAT, "b")
    assert new.taken_over
    assert (new.head, new.sent) == (entry(1), 1)  # the same update, its first reply done
    assert await queue.renew([old]) == {CHAT}
    assert not await queue.record_sent(old, 2)
    assert await queue.done(old) is None  # refused: nothing dropped
    following = await queue.done(new)
    assert following is not None and following.head == entry(2) and following.sent == 0


async def test_renewing_keeps_the_claim_past_its_ttl(
    queue: RedisIntakeQueue, redis_client: Redis
) -> None:
    await queue.enqueue(entry(1))
    claim = await queue.claim(CHAT, token="a")
    assert claim is not None
    # The claim's end is the chat's score in the bucket's due set; renewing moves it on.
    due_key = queue.keys.due(queue.keys.bucket(CHAT))
    before = await redis_client.zscore(due_key, CHAT)
    await asyncio.sleep(0.05)
    assert await queue.renew([claim]) == set()
    after = await redis_client.zscore(due_key, CHAT)
    assert before is not None and after is not None and after > before
    seconds, micros = await redis_client.time()
    assert after >= seconds * 1000 + micros // 1000 + 250  # about a TTL (0.3 s) from now


async def test_a_released_chat_may_be_claimed_at_once(queue: RedisIntakeQueue) -> None:
    for update_id in (1, 2):
        await queue.enqueue(entry(update_id))
    claim = await queue.claim(CHAT, token="a")
    assert claim is not None
    await queue.release(claim)
    assert await queue.due(limit=10) == [CHAT]
    again = await queue.claim(CHAT, token="b")
    assert again is not None and again.head == entry(1) and not again.taken_over


async def test_due_lists_only_chats_nobody_holds(queue: RedisIntakeQueue) -> None:
    for chat_id in range(100, 110):
        await queue.enqueue(entry(1, chat_id))
    held = await queue.claim(100, token="a")
    assert held is not None
    assert sorted(await queue.due(limit=100)) == list(range(101, 110))
    assert len(await queue.due(limit=3)) == 3
    assert await queue.backlog() == (await queue.backlog()).__class__(chats=10, updates=10)


def test_every_key_a_script_touches_for_a_chat_is_in_one_cluster_slot() -> None:
    keys = IntakeKeys()
    for chat_id in (1, 42, 10**12 + 7, -1001234567890):
        names = [
            keys.queue(chat_id),
            keys.seen(chat_id),
            keys.owner(chat_id),
            keys.sent(chat_id),
            keys.pace(chat_id),
            keys.group(chat_id),
            keys.due(keys.bucket(chat_id)),
        ]
        assert len({key_slot(name.encode()) for name in names}) == 1, names
