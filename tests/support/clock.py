"""THE test clock: the tests move it instead of sleeping.

It is a `tggate.core.ports.Clock` (callable, seconds since the epoch): pass it where a module
takes `clock=time.time`. `now` is its reading; `advance` moves it on."""

from __future__ import annotations

__all__ = ["FakeClock"]

START = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
