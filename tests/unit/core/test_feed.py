"""N2 in the bulk mode, pure (docs/scenarios.md#n2-bulk): one page of the feed decided by
`decide_feed_page`, and the subject read from an access token."""

from __future__ import annotations

import base64
import json

from tggate.core.machine import (
    AdvanceFeedCursor,
    FeedPageOutcome,
    FetchFeed,
    FindSubjectChats,
    QueueRoutedNotifications,
    RoutedNotification,
    decide_feed_page,
)
from tggate.core.ports import ActionDone, FeedNotification, FeedPage, ModuleUnavailable, SubjectChat
from tggate.core.replies import Reply
from tggate.core.subjects import token_subject


def _page(*items: tuple[str, str, str], cursor: str = "c2") -> FeedPage:
    return FeedPage([FeedNotification(i, s, t) for i, s, t in items], cursor)


def test_N2_bulk_a_page_is_routed_to_every_chat_of_its_person_then_the_cursor_moves() -> None:
    page = _page(("n1", "alice", "hi"), ("n2", "bob", "yo"), ("n3", "carol", "lost"))
    chats = {
        "alice": [SubjectChat(1, "en"), SubjectChat(2, "ru")],
        "bob": [SubjectChat(3, "en")],
        "carol": [],
    }
    assert decide_feed_page("c1", [], limit=100) == FetchFeed(after="c1", limit=100)
    assert decide_feed_page("c1", [page], limit=100) == FindSubjectChats(("alice", "bob", "carol"))
    queue = decide_feed_page("c1", [page, chats], limit=100)
    assert queue == QueueRoutedNotifications(
        (
            RoutedNotification(1, "n1", Reply("🔔 hi")),
            RoutedNotification(2, "n1", Reply("🔔 hi")),
            RoutedNotification(3, "n2", Reply("🔔 yo")),
        )
    )
    # Only once the page is in the outbox.
    assert decide_feed_page("c1", [page, chats, None], limit=100) == AdvanceFeedCursor("c2")
    outcome = decide_feed_page("c1", [page, chats, None, None], limit=100)
    assert outcome == FeedPageOutcome("c2", queued=3, dropped=1)


def test_N2_bulk_an_empty_page_ends_the_pull() -> None:
    assert decide_feed_page("c1", [_page(cursor="c1")], limit=10) == FeedPageOutcome(None)
    # A module may move the cursor past notifications it no longer has.
    assert decide_feed_page("c1", [_page(cursor="c9")], limit=10) == AdvanceFeedCursor("c9")


def test_N2_bulk_a_refused_or_missing_answer_moves_nothing() -> None:
    for answer in (ActionDone(401), ModuleUnavailable("main")):
        assert decide_feed_page("c1", [answer], limit=10) == FeedPageOutcome(None)


def test_N2_bulk_nobody_to_send_to_still_moves_the_cursor() -> None:
    page = _page(("n1", "carol", "x"))
    assert decide_feed_page(None, [page, {"carol": []}], limit=10) == AdvanceFeedCursor("c2")
    assert decide_feed_page(None, [page, {"carol": []}, None], limit=10) == FeedPageOutcome(
        "c2", queued=0, dropped=1
    )


def _jwt(payload: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2ln"


def test_the_subject_is_read_from_the_token_not_verified() -> None:
    assert token_subject(_jwt({"sub": "alice", "typ": "access"})) == "alice"
    assert token_subject(_jwt({"sub": ""})) is None
    assert token_subject(_jwt({"sub": 42})) is None
    assert token_subject(_jwt(["sub"])) is None
    assert token_subject("opaque-token") is None
    assert token_subject("a.!!!.c") is None
