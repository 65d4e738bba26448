"""Which replies of an update Telegram has already accepted, kept on disk
(docs/contract.md#reliability).

The offset the client confirms is the lowest unfinished update, so after a crash Telegram delivers
again every update above it, handled or not. Bot Logic answers a repeated update_id with its first
answer and repeats no side effect, but sending that answer again would show the person the same
reply twice (dozens of them after one SIGKILL under load). So after each reply Telegram accepts,
the client appends `<update key> <replies sent> <time>` here, and a restarted client (or a standby
sharing the data directory) skips what was sent. Only a reply Telegram accepted in the moment
before a crash, not yet written here, can repeat: at most one per chat per crash. Timer messages
are written down the same way (`outbox_key`): one sent but not yet acknowledged when the client
died is acknowledged after the restart instead of being sent again.

Appends go straight to the kernel (`os.write` on an O_APPEND descriptor), so they survive a
SIGKILL; a power cut may lose the last ones (an fsync per reply would cost more than the rare
repeat it saves). An update's key holds more than its id (`update_key`), since update ids are not
unique forever: Telegram may pick them afresh after a week without updates, and a test Telegram
starts again from 1. Entries are forgotten after a day.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from tggate.core.ports import Clock

from .base import CallbackPress, IncomingMessage

__all__ = ["DeliveryJournal", "outbox_key", "update_key"]

logger = logging.getLogger("tggate.client.journal")

# Telegram delivers again only updates at or above the confirmed offset, and the poller never has
# more than a few hundred of those handled; the newest 10,000 entries cover them many times over.
_KEEP = 10_000
_MAX_AGE_S = 86_400.0


def update_key(update: IncomingMessage | CallbackPress) -> str:
    """Chat, update id and what makes the update unique beyond its id (no spaces)."""
    tag = update.date if isinstance(update, IncomingMessage) else update.callback_id
    return "".join(f"{update.chat_id}:{update.update_id}:{tag}".split())


def outbox_key(message_id: str) -> str:
    """A timer message from Bot Logic's outbox, whose ids are unique (no spaces)."""
    return "outbox:" + "".join(message_id.split())


class DeliveryJournal:
    def __init__(
        self,
        path: Path,
        *,
        keep: int = _KEEP,
        max_age_s: float = _MAX_AGE_S,
        clock: Clock = time.time,
    ) -> None:
        self._path = path
        self._keep = keep
        self._max_age_s = max_age_s
        self._clock = clock
        self._sent: dict[str, tuple[int, float]] = {}
        self._lines = 0
        self._fd: int | None = None

    def open(self) -> None:
        """(Re)read the journal, e.g. when this instance becomes active, and open it for appends."""
        self.close()
        self._sent.clear()
        self._lines = 0
        oldest = self._clock() - self._max_age_s
        with contextlib.suppress(OSError):
            for line in self._path.read_text("utf-8", errors="replace").splitlines():
                self._lines += 1
                try:
                    key, sent, at = line.split()
                    count, when = int(sent), float(at)
                except ValueError:
                    continue  # a line cut short by a crash
                if when >= oldest:
                    self._sent[key] = (max(count, self.sent(key)), when)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            logger.warning("no delivery journal (%s): a crash may repeat replies", error)
            return
        if self._lines > 2 * self._keep:
            self._compact()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def sent(self, key: str) -> int:
        """How many of the update's replies Telegram has accepted (0 if none or unknown)."""
        return self._sent.get(key, (0, 0.0))[0]

    def record(self, key: str, sent: int) -> None:
        """Telegram accepted the first `sent` replies of the update."""
        at = self._clock()
        self._sent[key] = (sent, at)
        if self._fd is None:
            return
        try:
            os.write(self._fd, f"{key} {sent} {at:.0f}\n".encode())
        except OSError as error:
            # Losing the journal costs repeated replies after a crash, never a lost update.
            logger.warning("could not write the delivery journal: %s", error)
            return
        self._lines += 1
        if self._lines > 2 * self._keep:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal with the newest `keep` entries only."""
        newest = sorted(self._sent.items(), key=lambda item: item[1][1])[-self._keep :]
        self._sent = dict(newest)
        temporary = self._path.with_name(self._path.name + ".tmp")
        try:
            temporary.write_text("".join(f"{k} {s} {at:.0f}\n" for k, (s, at) in newest), "utf-8")
            os.replace(temporary, self._path)
            self.close()
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            logger.warning("could not compact the delivery journal: %s", error)
            return
        self._lines = len(newest)
