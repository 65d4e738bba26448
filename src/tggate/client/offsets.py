"""Which getUpdates offset is safe to confirm (docs/contract.md#reliability: no update lost).

Telegram forgets every update below the `offset` of a getUpdates call. So the offset may only
pass an update once it is fully handled: it is the lowest unfinished update_id, or one past the
highest fetched id when nothing is unfinished. Pure; the poller drives it.
"""

from __future__ import annotations

__all__ = ["OffsetTracker"]


class OffsetTracker:
    def __init__(self, *, start: int | None = None) -> None:
        # `start` is an offset confirmed earlier (by this process before it lost the lease).
        self._unfinished: set[int] = set()
        self._highest: int | None = None if start is None else start - 1

    @property
    def offset(self) -> int | None:
        """The next getUpdates offset; None before anything was fetched (Telegram decides)."""
        if self._unfinished:
            return min(self._unfinished)
        return None if self._highest is None else self._highest + 1

    @property
    def in_flight(self) -> int:
        return len(self._unfinished)

    def is_new(self, update_id: int) -> bool:
        """False for an update fetched before (Telegram repeats unconfirmed ones)."""
        return self._highest is None or update_id > self._highest

    def add(self, update_id: int) -> None:
        if not self.is_new(update_id):
            raise ValueError(f"update {update_id} is not newer than {self._highest}")
        self._unfinished.add(update_id)
        self._highest = update_id

    def finish(self, update_id: int) -> None:
        self._unfinished.discard(update_id)
