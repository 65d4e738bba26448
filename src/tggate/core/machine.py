"""The seed's per-chat state machine (docs/scenarios.md), pure: no I/O, no clock, no randomness.

Every transition a person can see is decided here; the service layer (`tggate.logic`) loads the
session, performs the requests the machine makes and writes the outcome it returns.

- `decide`: one command (C7, U, A, Z). Called with the session, the command and the answers the
  outside world gave to the requests made so far, it replays the command from the start with
  those answers and returns the next `Request` to perform or the final `Outcome`.
- `decide_login_check`: one Anonymous chat in the login-check timer (L2).
- `decide_notifications`: one Authorized chat in the notification timer (N2, with Z7–Z9 on a
  401), replayed like `decide`.
- `decide_lost_session`: a session no configured key opens, met by a timer cycle.
- `decide_feed_page`: one page of the Main module's notification feed in the bulk mode (N2,
  routed to chats by the person's subject), replayed like `decide`.

The Mermaid diagram of these states is in docs/state-machine.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from tggate.core.commands import BUILTIN_COMMANDS, LOGIN_TYPES, ActionSpec, CommandTable
from tggate.core.ports import (
    ActionDone,
    FeedPage,
    LoginDenied,
    LoginGone,
    LoginGranted,
    LoginPending,
    LoginStarted,
    ModuleUnavailable,
    Notification,
    Refreshed,
    RefreshRejected,
    SubjectChat,
    TelegramUser,
)
from tggate.core.render import render_action_reply
from tggate.core.replies import Button, Reply
from tggate.core.session import Anonymous, Authorized, LoginPrompt, LostSession, Session
from tggate.core.subjects import token_subject
from tggate.core.texts import Text, say

__all__ = [
    "KEEP",
    "AdvanceFeedCursor",
    "Button",
    "CallAction",
    "CheckLogin",
    "Command",
    "CycleOutcome",
    "DeleteNotifications",
    "FeedPageOutcome",
    "FeedRequest",
    "FetchFeed",
    "FetchNotifications",
    "FindSubjectChats",
    "Keep",
    "LogoutEverywhere",
    "NotificationMessage",
    "NotificationRequest",
    "Outcome",
    "QueueNotifications",
    "QueueRoutedNotifications",
    "RefreshTokens",
    "Reply",
    "Request",
    "RoutedNotification",
    "StartLogin",
    "decide",
    "decide_feed_page",
    "decide_login_check",
    "decide_lost_session",
    "decide_notifications",
    "login_offer",
]


# ---- inputs and outputs ----


@dataclass(frozen=True, slots=True)
class Command:
    chat_id: int
    name: str
    args: Mapping[str, str]
    language: str = "ru"
    telegram_user: TelegramUser | None = None  # who sent it, for the login confirmation page


class Keep:
    """The session stays as it is stored: nothing to write."""

    _instance: Keep | None = None

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one command: the next session (None = Unknown) and the replies."""

    session: Session | Keep | None
    replies: tuple[Reply, ...]
    ttl_s: int | None = None  # for an Anonymous session: it expires with its login token


# Requests: what the machine needs to know from the outside world to go on.


@dataclass(frozen=True, slots=True)
class StartLogin:
    """U2/A1: ask the Authorization module to start a login with a fresh login token."""

    login_token: str
    login_type: str
    telegram_user: TelegramUser | None = None


@dataclass(frozen=True, slots=True)
class CheckLogin:
    """A2: ask the Authorization module about the stored login token."""

    login_token: str


@dataclass(frozen=True, slots=True)
class CallAction:
    """Z4: call the Main module."""

    action: ActionSpec
    args: Mapping[str, str]
    access_token: str


@dataclass(frozen=True, slots=True)
class RefreshTokens:
    """Z7: trade the refresh token for a new pair. The service makes this single-flight and
    stores the new pair itself, so the answer is the pair now stored for the chat."""

    refresh_token: str


@dataclass(frozen=True, slots=True)
class LogoutEverywhere:
    """Z3: revoke every refresh token of the person. Once done, none of their chats is routed
    notifications of the feed any more (`subject`, the bulk mode: docs/scenarios.md#n2-bulk)."""

    refresh_token: str
    subject: str | None = None


Request = StartLogin | CheckLogin | CallAction | RefreshTokens | LogoutEverywhere
Answer = object  # whatever the port returned for the request at the same position


# ---- replaying answers ----


class _NeedAnswer(Exception):
    """The replay reached a request nobody has answered yet: `_Answers.pending` is it."""


_R = TypeVar("_R")


@dataclass(slots=True)
class _Answers(Generic[_R]):
    given: Sequence[Answer]
    used: int = 0
    pending: _R | None = None
    asked: list[_R] = field(default_factory=list)

    def ask(self, request: _R) -> Answer:
        self.asked.append(request)
        if self.used == len(self.given):
            self.pending = request
            raise _NeedAnswer
        answer = self.given[self.used]
        self.used += 1
        return answer

    def next_request(self) -> _R:
        assert self.pending is not None, "no request is pending"
        return self.pending


@dataclass(frozen=True, slots=True)
class _Context:
    command: Command
    table: CommandTable
    fresh_login_token: str

    @property
    def language(self) -> str:
        return self.command.language


# At most this many refreshes per command: a token refused right after a refresh means the
# Main module does not accept what the Authorization module issues; looping would not help.
_MAX_REFRESHES = 2


def decide(
    session: Session | LostSession | None,
    command: Command,
    answers: Sequence[Answer],
    *,
    table: CommandTable,
    fresh_login_token: str,
) -> Request | Outcome:
    """The next request to perform, or the outcome of `command` in `session`."""
    context = _Context(command=command, table=table, fresh_login_token=fresh_login_token)
    feed: _Answers[Request] = _Answers(given=answers)
    try:
        if session is None:
            return _unknown(context, feed)
        if isinstance(session, LostSession):
            return _lost(context, feed)
        if isinstance(session, Anonymous):
            return _anonymous(session, context, feed)
        return _authorized(session, context, feed, prefix=())
    except _NeedAnswer:
        return feed.next_request()


# ---- replies shared by several steps ----


def login_offer(language: str, *, lead: Text | None = Text.NOT_LOGGED_IN) -> Reply:
    """U1: "not logged in" (or another `lead`) with buttons for the three login types."""
    lines = [say(lead, language)] if lead is not None else []
    lines.append(say(Text.LOGIN_OFFER, language))
    return Reply(
        text="\n".join(lines),
        buttons=(
            (
                Button("GitHub", command="/login github"),
                Button("Яндекс ID" if language == "ru" else "Yandex ID", command="/login yandex"),
            ),
            (Button(say(Text.BUTTON_CODE, language), command="/login code"),),
        ),
    )


def _prompt_reply(prompt: LoginPrompt, language: str, *, lead: Text | None = None) -> Reply:
    text = prompt.text
    if prompt.code and prompt.code not in text:
        text = f"{text}\n{prompt.code}"
    if lead is not None:
        text = f"{say(lead, language)}\n{text}"
    buttons = ((Button(say(Text.BUTTON_OPEN, language), url=prompt.url),),) if prompt.url else ()
    return Reply(text=text, buttons=buttons)


def _plain(text: Text, language: str) -> Reply:
    return Reply(text=say(text, language))


def _help(context: _Context) -> Reply:
    language = context.language
    lines = [say(Text.HELP, language), "", say(Text.HELP_COMMANDS, language)]
    lines += [f"/{name} — {text.get(language)}" for name, text in BUILTIN_COMMANDS.items()]
    lines += [
        f"{spec.usage(language)} — {spec.description.get(language)}"
        for spec in context.table.actions.values()
    ]
    return Reply(text="\n".join(lines))


# ---- U: Unknown ----


def _start_login(context: _Context, feed: _Answers[Request], login_type: str) -> Outcome:
    """U2 and A1: a fresh login token, the Authorization module's answer relayed."""
    language = context.language
    token = context.fresh_login_token
    answer = feed.ask(
        StartLogin(
            login_token=token,
            login_type=login_type,
            telegram_user=context.command.telegram_user,
        )
    )
    if not isinstance(answer, LoginStarted):
        return Outcome(KEEP, (_plain(Text.UNAVAILABLE, language),))
    prompt, expires_in = answer.prompt, answer.expires_in
    session = Anonymous(login_token=token, login_type=login_type, prompt=prompt, language=language)
    return Outcome(session, (_prompt_reply(prompt, language),), ttl_s=max(1, expires_in))


def _requested_login_type(command: Command) -> str | None:
    if command.name != "login":
        return None
    login_type = command.args.get("type")
    return login_type if login_type in LOGIN_TYPES else None


def _unknown(context: _Context, feed: _Answers[Request]) -> Outcome:
    command = context.command
    login_type = _requested_login_type(command)
    if login_type is not None:
        return _start_login(context, feed, login_type)  # U2
    if command.name in ("start", "help"):
        return Outcome(KEEP, (_help(context), login_offer(context.language)))
    return Outcome(KEEP, (login_offer(context.language),))  # U1


# ---- a lost session: no configured key opens it ----


def _lost(context: _Context, feed: _Answers[Request]) -> Outcome:
    """The tokens are gone (docs/state-machine.md#lost-sessions): the key is deleted and the
    person asked to log in again; a login with a type starts one at once (as U2), replacing it."""
    login_type = _requested_login_type(context.command)
    if login_type is not None:
        return _start_login(context, feed, login_type)
    return Outcome(None, (login_offer(context.language, lead=Text.SESSION_LOST),))


# ---- A: Anonymous ----


def _anonymous(session: Anonymous, context: _Context, feed: _Answers[Request]) -> Outcome:
    language = context.language
    login_type = _requested_login_type(context.command)
    if login_type is not None:
        return _start_login(context, feed, login_type)  # A1
    answer = feed.ask(CheckLogin(login_token=session.login_token))  # A2
    if isinstance(answer, LoginGone):  # A3
        return Outcome(None, (login_offer(language),))
    if isinstance(answer, LoginDenied):  # A4
        return Outcome(None, (_plain(Text.LOGIN_FAILED, language),))
    if isinstance(answer, LoginPending):  # A6
        return Outcome(
            KEEP, (_prompt_reply(session.prompt, language, lead=Text.LOGIN_NOT_FINISHED),)
        )
    if isinstance(answer, LoginGranted):  # A5
        authorized = Authorized(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
            language=language,
        )
        logged_in = _plain(Text.LOGGED_IN, language)
        if context.command.name in ("login", "start"):
            return Outcome(authorized, (logged_in,))
        outcome = _authorized(authorized, context, feed, prefix=(logged_in,))
        # The grant must be stored even when the command itself keeps "the" session.
        return outcome if not isinstance(outcome.session, Keep) else _replace(outcome, authorized)
    return Outcome(KEEP, (_plain(Text.UNAVAILABLE, language),))


def _replace(outcome: Outcome, session: Session) -> Outcome:
    return Outcome(session, outcome.replies, outcome.ttl_s)


# ---- Z: Authorized ----


def _authorized(
    session: Authorized, context: _Context, feed: _Answers[Request], *, prefix: tuple[Reply, ...]
) -> Outcome:
    command, language = context.command, context.language
    if command.name == "login":  # Z1
        return Outcome(KEEP, (*prefix, _plain(Text.ALREADY_LOGGED_IN, language)))
    if command.name == "logout":
        if command.args.get("all") != "true":  # Z2
            return Outcome(None, (*prefix, _plain(Text.SESSION_ENDED, language)))
        answer = feed.ask(  # Z3
            LogoutEverywhere(
                refresh_token=session.refresh_token, subject=token_subject(session.access_token)
            )
        )
        if isinstance(answer, ModuleUnavailable):
            # Keep the session: the person can try again; deleting it would leave the other
            # devices logged in with no way to end them from here.
            return Outcome(KEEP, (*prefix, _plain(Text.UNAVAILABLE, language)))
        return Outcome(None, (*prefix, _plain(Text.SESSION_ENDED_EVERYWHERE, language)))
    if command.name in ("start", "help"):
        return Outcome(KEEP, (*prefix, _help(context)))
    action = context.table.actions.get(command.name)
    if action is None:  # the service validates commands first; this is a last guard
        return Outcome(KEEP, (*prefix, _plain(Text.NO_SUCH_COMMAND, language)))
    return _run_action(session, action, context, feed, prefix=prefix)


def _run_action(
    session: Authorized,
    action: ActionSpec,
    context: _Context,
    feed: _Answers[Request],
    *,
    prefix: tuple[Reply, ...],
) -> Outcome:
    language = context.language
    current = session
    for _attempt in range(_MAX_REFRESHES + 1):
        answer = feed.ask(  # Z4
            CallAction(action=action, args=context.command.args, access_token=current.access_token)
        )
        if isinstance(answer, ModuleUnavailable) or not isinstance(answer, ActionDone):
            return Outcome(KEEP, (*prefix, _plain(Text.UNAVAILABLE, language)))
        if answer.status == 200:  # Z5
            text = render_action_reply(action, answer.data, language)
            return Outcome(KEEP, (*prefix, Reply(text=text)))
        if answer.status == 403:  # Z6
            return Outcome(KEEP, (*prefix, _plain(Text.FORBIDDEN, language)))
        if answer.status == 404:
            return Outcome(KEEP, (*prefix, _plain(Text.NOT_FOUND, language)))
        if answer.status != 401:
            failed = Text.UNAVAILABLE if answer.status >= 500 else Text.ACTION_FAILED
            return Outcome(KEEP, (*prefix, _plain(failed, language)))
        refreshed = feed.ask(RefreshTokens(refresh_token=current.refresh_token))  # Z7
        if isinstance(refreshed, RefreshRejected):  # Z8
            return Outcome(None, (*prefix, login_offer(language)))
        if not isinstance(refreshed, Refreshed):
            return Outcome(KEEP, (*prefix, _plain(Text.UNAVAILABLE, language)))
        # Z9: the service already stored the new pair; retry the command with it.
        current = Authorized(refreshed.access_token, refreshed.refresh_token, current.language)
    return Outcome(None, (*prefix, login_offer(language)))


# ---- timer cycles: one chat's result ----


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    """One chat's result in a timer cycle: the next session (None = Unknown) and an optional
    message, which the service puts into the outbox in the same atomic write."""

    session: Session | Keep | None
    message: Reply | None = None


# ---- L: the login-check timer ----


def decide_login_check(session: Anonymous, answer: object) -> CycleOutcome:
    """L2: what the login check of one Anonymous chat leads to."""
    language = session.language
    if isinstance(answer, LoginGone):
        return CycleOutcome(None)
    if isinstance(answer, LoginDenied):
        return CycleOutcome(None, _plain(Text.LOGIN_FAILED, language))
    if isinstance(answer, LoginGranted):
        authorized = Authorized(answer.access_token, answer.refresh_token, language)
        return CycleOutcome(authorized, _plain(Text.LOGGED_IN, language))
    return CycleOutcome(KEEP)  # pending, or the module is unavailable: try next tick


def decide_lost_session(session: LostSession) -> CycleOutcome:
    """A timer cycle met a session no key opens: delete it and say so once. The message and the
    delete are one compare-and-set, so a chat is told at most once, whichever cycle or command
    gets there first (docs/state-machine.md#lost-sessions)."""
    return CycleOutcome(None, login_offer(session.language, lead=Text.SESSION_LOST))


# ---- N: the notification timer ----


@dataclass(frozen=True, slots=True)
class FetchNotifications:
    """N2: ask the Main module for the chat's notifications."""

    access_token: str


@dataclass(frozen=True, slots=True)
class NotificationMessage:
    """One notification as the chat will read it, with the Main module's id for it."""

    notification_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class QueueNotifications:
    """N2: put the notifications into the durable outbox (the answer is None).

    Asked before `DeleteNotifications`: a crash in between fetches the same ids again, which
    the outbox recognises, so nothing is lost and nothing doubled."""

    messages: tuple[NotificationMessage, ...]


@dataclass(frozen=True, slots=True)
class DeleteNotifications:
    """N2: delete exactly the notifications received, so one that arrived since is kept."""

    access_token: str
    ids: tuple[str, ...]


NotificationRequest = FetchNotifications | RefreshTokens | QueueNotifications | DeleteNotifications

# Fetches (each 401 refreshed) per chat and tick; a chat still answered 401 after that is tried
# again next tick with the pair stored by then.
_NOTIFICATION_FETCHES = 2


def decide_notifications(
    session: Authorized, answers: Sequence[Answer]
) -> NotificationRequest | CycleOutcome:
    """N2 for one Authorized chat: the next request to perform, or the chat's outcome."""
    feed: _Answers[NotificationRequest] = _Answers(given=answers)
    try:
        return _notifications(session, feed)
    except _NeedAnswer:
        return feed.next_request()


def _notifications(session: Authorized, feed: _Answers[NotificationRequest]) -> CycleOutcome:
    language = session.language
    current = session
    for _attempt in range(_NOTIFICATION_FETCHES):
        found = feed.ask(FetchNotifications(access_token=current.access_token))
        if isinstance(found, ActionDone) and found.status == 401:
            # The notification step's 401 follows Z7–Z9 for that chat (docs/scenarios.md#n2).
            refreshed = feed.ask(RefreshTokens(refresh_token=current.refresh_token))  # Z7
            if isinstance(refreshed, RefreshRejected):  # Z8
                return CycleOutcome(None, login_offer(language))
            if not isinstance(refreshed, Refreshed):
                return CycleOutcome(KEEP)
            # Z9: the service already stored the new pair; fetch again with it.
            current = Authorized(refreshed.access_token, refreshed.refresh_token, language)
            continue
        if not isinstance(found, Sequence) or not found:
            return CycleOutcome(KEEP)  # nothing new, another status, or unavailable: next tick
        notifications = [item for item in found if isinstance(item, Notification)]
        feed.ask(
            QueueNotifications(
                tuple(
                    NotificationMessage(
                        item.id, Reply(say(Text.NOTIFICATION, language, text=item.text))
                    )
                    for item in notifications
                )
            )
        )
        feed.ask(
            DeleteNotifications(
                access_token=current.access_token, ids=tuple(item.id for item in notifications)
            )
        )
        return CycleOutcome(KEEP)
    return CycleOutcome(KEEP)


# ---- N, bulk mode: one page of the Main module's feed (docs/scenarios.md#n2-bulk) ----


@dataclass(frozen=True, slots=True)
class FetchFeed:
    """N2 (bulk): ask the Main module for the notifications after `after`, with the service
    credential."""

    after: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class FindSubjectChats:
    """N2 (bulk): the Authorized chats of each subject (the answer: subject -> chats)."""

    subjects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoutedNotification:
    """One notification for one chat of its person."""

    chat_id: int
    notification_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class QueueRoutedNotifications:
    """N2 (bulk): put the page's notifications into the durable outbox (the answer is None).

    Asked before `AdvanceFeedCursor`: a crash in between reads the page again, and the outbox
    recognises its ids, so nothing is lost and nothing doubled."""

    messages: tuple[RoutedNotification, ...]


@dataclass(frozen=True, slots=True)
class AdvanceFeedCursor:
    """N2 (bulk): the page is in the outbox; the next pull starts after it."""

    cursor: str


FeedRequest = FetchFeed | FindSubjectChats | QueueRoutedNotifications | AdvanceFeedCursor


@dataclass(frozen=True, slots=True)
class FeedPageOutcome:
    """One page's result: the cursor to read the next page after (None: stop for this tick, the
    feed is empty or unavailable), how many messages were queued and how many notifications
    had no Authorized chat (dropped)."""

    next_cursor: str | None
    queued: int = 0
    dropped: int = 0


def decide_feed_page(
    after: str | None, answers: Sequence[Answer], *, limit: int
) -> FeedRequest | FeedPageOutcome:
    """N2 (bulk) for one page of the feed after the cursor `after`: the next request to
    perform, or the page's outcome; replayed like `decide`."""
    feed: _Answers[FeedRequest] = _Answers(given=answers)
    try:
        return _feed_page(after, limit, feed)
    except _NeedAnswer:
        return feed.next_request()


def _feed_page(after: str | None, limit: int, feed: _Answers[FeedRequest]) -> FeedPageOutcome:
    page = feed.ask(FetchFeed(after=after, limit=limit))
    if not isinstance(page, FeedPage):
        return FeedPageOutcome(None)  # refused or unavailable: the same page next tick
    if not page.notifications:
        if page.cursor != after:
            feed.ask(AdvanceFeedCursor(page.cursor))
        return FeedPageOutcome(None)
    subjects = tuple(dict.fromkeys(item.subject for item in page.notifications))
    found = feed.ask(FindSubjectChats(subjects))
    chats: Mapping[str, Sequence[SubjectChat]] = found if isinstance(found, Mapping) else {}
    messages: list[RoutedNotification] = []
    dropped = 0
    for item in page.notifications:
        # Every chat the person is logged in on gets it; nobody else does.
        routes = chats.get(item.subject, ())
        if not routes:
            dropped += 1
        messages += (
            RoutedNotification(
                chat.chat_id,
                item.id,
                Reply(say(Text.NOTIFICATION, chat.language, text=item.text)),
            )
            for chat in routes
        )
    if messages:
        feed.ask(QueueRoutedNotifications(tuple(messages)))
    feed.ask(AdvanceFeedCursor(page.cursor))
    return FeedPageOutcome(page.cursor, queued=len(messages), dropped=dropped)
