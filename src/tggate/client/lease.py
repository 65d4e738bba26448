"""The poller lease (docs/scenarios.md#lease): only its holder polls Telegram and runs the timers.

Telegram allows one getUpdates poller per token and the timers must not tick twice, so several
client instances agree through Bot Logic which one is active. The holder renews every ttl/3; a
standby keeps asking and takes over once the lease is free.

Only a definite answer changes the role. The lease lives in Redis, so a renewal that cannot be
made (Bot Logic or Redis down) keeps the holder active: standing by then would leave nobody
fetching updates and the people writing would hear nothing, not even that the service is
unavailable (issue 9, docs/scenarios.md#lease). Two pollers are still never at work together
for long: Telegram answers the second getUpdates with 409, and a holder whose lease is
unconfirmed stands by on that 409 (`conflicted`); once Bot Logic answers again, "not yours"
makes the holder stand by as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .base import LogicApi, LogicRejected, LogicUnavailable
from .retry import OutageLog, sleep_or_stop

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("tggate.client.lease")

# On a graceful shutdown the lease is renewed for this long only (the shortest Bot Logic takes),
# so a standby takes over within a second or so instead of a whole ttl.
_RELEASE_TTL_S = 1.0
_FIRST_RETRY_S = 0.1
# While Bot Logic cannot be reached at all: ask at least this often. Doubling up to ttl/3 made a
# client that started before Bot Logic (as the demo starts them) poll up to 3 s after Bot Logic
# was ready (bench/README.md, "startup"), and half a second was still up to 0.5 s of the demo's
# start; a refused connection five times a second costs nothing.
_MAX_UNREACHED_RETRY_S = 0.2


class LeaseKeeper:
    def __init__(
        self,
        *,
        logic: LogicApi,
        instance: str,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logic = logic
        self._instance = instance
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._held = asyncio.Event()
        self._not_held = asyncio.Event()
        self._not_held.set()
        self._deadline = 0.0  # until when a granted lease is surely still ours
        self._outage = OutageLog(logger, "renewing the poller lease")
        self._unconfirmed_said = False  # logged once per outage

    @property
    def held(self) -> bool:
        return self._held.is_set()

    async def wait_held(self) -> None:
        await self._held.wait()

    async def wait_lost(self) -> None:
        await self._not_held.wait()

    def _set(self, held: bool, *, stopping: bool = False) -> None:
        if held == self.held:
            return
        if held:
            logger.info("poller lease acquired by %s: active", self._instance)
            self._not_held.clear()
            self._held.set()
            return
        if stopping:
            logger.info("poller lease given up by %s: stopping", self._instance)
        else:
            logger.warning("poller lease lost by %s: standby", self._instance)
        self._held.clear()
        self._not_held.set()

    @property
    def confirmed(self) -> bool:
        """Held, and granted recently enough that the server surely still counts it as ours."""
        return self.held and self._monotonic() < self._deadline

    def conflicted(self) -> None:
        """Telegram refused getUpdates with 409: another poller is at work. While the lease is
        confirmed that poller is a stranger (the holder keeps its role and Telegram decides);
        while it is not, the other one likely took the lease over: stand by."""
        if self.held and not self.confirmed:
            self._set(False)

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire, renew or wait for the lease until `stop`; then release it if held."""
        interval = self._ttl_s / 3
        # Bot Logic unreachable (still starting, say, or Redis is down): ask again soon,
        # backing off to five times a second, so a fresh start polls within 0.2 s and a holder
        # learns soon after an outage whether the lease is still its own.
        retry = _FIRST_RETRY_S
        try:
            while not stop.is_set():
                reached = await self._attempt()
                wait = interval
                if not reached:
                    wait, retry = min(retry, interval), min(retry * 2, _MAX_UNREACHED_RETRY_S)
                else:
                    retry = _FIRST_RETRY_S
                    if self.held:
                        wait = min(wait, max(0.0, self._deadline - self._monotonic()))
                if await sleep_or_stop(stop, wait):
                    break
        finally:
            if self.held:
                self._set(False, stopping=True)
                await self._release()

    async def _attempt(self) -> bool:
        """One acquire or renew; False when Bot Logic could not be asked."""
        started = self._monotonic()
        try:
            # A renewal that takes longer than this cannot be trusted to land in time.
            granted = await asyncio.wait_for(
                self._logic.lease(instance=self._instance, ttl_s=self._ttl_s), self._ttl_s / 6
            )
        except (LogicUnavailable, LogicRejected, TimeoutError) as error:
            # No answer is not "someone else's": the role stays as it is (see the docstring).
            self._outage.failed(str(error) or type(error).__name__)
            if self.held and not self.confirmed and not self._unconfirmed_said:
                self._unconfirmed_said = True
                logger.warning(
                    "poller lease of %s unconfirmed (Bot Logic cannot be asked): staying "
                    "active until Bot Logic or a 409 from Telegram says otherwise",
                    self._instance,
                )
            return False
        self._outage.succeeded()
        self._unconfirmed_said = False
        if granted:
            # Counted from when the request left: the server's clock started no earlier.
            self._deadline = started + self._ttl_s * 5 / 6
        self._set(granted)
        return True

    async def _release(self) -> None:
        try:
            await asyncio.wait_for(
                self._logic.lease(instance=self._instance, ttl_s=_RELEASE_TTL_S), self._ttl_s / 6
            )
        except (LogicUnavailable, LogicRejected, TimeoutError) as error:
            logger.debug("could not release the lease early (%s); it expires by itself", error)
