"""N2 in the bulk mode (docs/scenarios.md#n2-bulk): one pull of the Main module's notification
feed per tick, routed to chats by the person's subject.

The pure machine decides each page (`decide_feed_page`); this module performs its requests:
the feed call with the service credential, the subject -> chats lookup, the outbox, the
cursor. The cursor moves only after the page is in the outbox, so a crash reads the page again
and the outbox drops the ids it holds or delivered: nothing is lost, nothing doubled. One
replica pulls at a time (a lock in the store); pages per pull are bounded, the rest waits for
the next tick.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from tggate.core.machine import (
    AdvanceFeedCursor,
    FeedPageOutcome,
    FeedRequest,
    FetchFeed,
    FindSubjectChats,
    QueueRoutedNotifications,
    decide_feed_page,
)
from tggate.core.ports import (
    ActionDone,
    FeedStore,
    NotificationFeed,
    OutboxKind,
    OutboxMessage,
    SessionStore,
)
from tggate.core.session import Authorized, Status
from tggate.core.subjects import token_subject
from tggate.logic.metrics import LogicMetrics

__all__ = ["FeedPull", "FeedPuller", "notification_message_id"]

log = logging.getLogger("tggate.logic")


def notification_message_id(chat_id: int, notification_id: str) -> str:
    """The outbox id of a notification for a chat: the same in both modes, so switching modes
    neither repeats a notification nor loses one (tggate.logic.cycles)."""
    return f"n:{chat_id}:{notification_id}"


@dataclass(frozen=True, slots=True)
class FeedPull:
    """What one pull did: pages read (the Main module calls), messages queued, notifications
    dropped for having no Authorized chat; `locked` when another replica was pulling."""

    pages: int = 0
    queued: int = 0
    dropped: int = 0
    locked: bool = False


class FeedPuller:
    def __init__(
        self,
        *,
        store: SessionStore,
        feed_store: FeedStore,
        feed: NotificationFeed,
        metrics: LogicMetrics,
        page_size: int,
        max_pages: int,
        lock_ttl_ms: int,
    ) -> None:
        self._store = store
        self._feed_store = feed_store
        self._feed = feed
        self._metrics = metrics
        self._page_size = page_size
        self._max_pages = max_pages
        self._lock_ttl_ms = lock_ttl_ms
        self._filed = False

    async def pull(self) -> FeedPull:
        """Read the feed from the stored cursor, at most `max_pages` pages, into the outbox."""
        owner = secrets.token_hex(8)
        if not await self._feed_store.acquire_feed_lock(owner=owner, ttl_ms=self._lock_ttl_ms):
            return FeedPull(locked=True)
        try:
            if not self._filed:
                await self.file_every_chat()
                self._filed = True
            return await self._pull()
        finally:
            await self._feed_store.release_feed_lock(owner=owner)

    async def file_every_chat(self) -> int:
        """File every Authorized chat in the subject index: the store keeps the index only in
        the bulk mode, so chats logged in under the per-chat mode (before a switch, or while a
        replica still ran it) are filed at this process's first pull. Returns how many."""
        filed = 0
        async for batch in self._store.sessions(Status.AUTHORIZED):
            chats = [
                (chat_id, subject)
                for chat_id, stored in batch
                if isinstance(stored.session, Authorized)
                and (subject := token_subject(stored.session.access_token)) is not None
            ]
            await self._feed_store.file_subjects(chats)
            filed += len(chats)
        log.info("bulk notifications: %d Authorized chats filed by subject", filed)
        return filed

    async def _pull(self) -> FeedPull:
        cursor = await self._feed_store.feed_cursor()
        pages = queued = dropped = 0
        while pages < self._max_pages:
            outcome = await self.page(cursor)
            pages += 1
            queued += outcome.queued
            dropped += outcome.dropped
            if outcome.next_cursor is None:
                break
            cursor = outcome.next_cursor
        return FeedPull(pages=pages, queued=queued, dropped=dropped)

    async def page(self, after: str | None) -> FeedPageOutcome:
        """One page after the cursor `after`, decided by the machine step by step."""
        answers: list[object] = []
        while not isinstance(
            step := decide_feed_page(after, answers, limit=self._page_size), FeedPageOutcome
        ):
            answers.append(await self.perform(step))
        if step.dropped:
            self._metrics.feed_dropped.inc(step.dropped)
        return step

    async def perform(self, request: FeedRequest) -> object:
        """Perform one request of `decide_feed_page` and return its answer."""
        if isinstance(request, FetchFeed):
            found = await self._feed.notification_feed(after=request.after, limit=request.limit)
            self._metrics.module_call("notification_feed", found)
            if isinstance(found, ActionDone) and found.status in (401, 403):
                log.error(
                    "the Main module refused the service credential (%s) on the notification "
                    "feed: check TGGATE_MAIN_SERVICE_TOKEN",
                    found.status,
                )
            return found
        if isinstance(request, FindSubjectChats):
            return await self._feed_store.subject_chats(request.subjects)
        if isinstance(request, QueueRoutedNotifications):
            await self._store.add_outbox(
                [
                    OutboxMessage(
                        notification_message_id(item.chat_id, item.notification_id),
                        item.chat_id,
                        OutboxKind.NOTIFICATION,
                        item.reply,
                    )
                    for item in request.messages
                ]
            )
            return None
        if isinstance(request, AdvanceFeedCursor):
            await self._feed_store.advance_feed_cursor(request.cursor)
            return None
        raise AssertionError(f"unhandled request {request!r}")
