"""Refresh tokens tracked server-side: rotation with a grace window, reuse detection, logout.

Every refresh token is recorded by its `jti` with the person (`sub`) and the family (one login and
all its rotations), so the module can revoke them. Rotation follows RFC 9700 §4.14.2: a used
refresh token stops working, except that for `grace_s` seconds after its rotation it answers with
the *same* successor pair, so concurrent refreshes of one chat (or a retry after a lost answer)
all end up holding identical tokens. A rotated token presented after the grace window is a reuse:
the whole family is revoked, as the RFC recommends.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tggate_sandbox.reference.auth.tokens import TokenCodec, TokenPair, TokenRejected

__all__ = ["RefreshRefused", "SessionRegistry"]

log = logging.getLogger("tggate_sandbox.reference.auth")


class RefreshRefused(Exception):
    """The refresh token is expired, unknown, revoked or reused; `detail` says which."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(slots=True)
class _RefreshRecord:
    sub: str
    name: str
    family: str
    expires_at: int
    rotated_at: float | None = None
    successor: TokenPair | None = None


class SessionRegistry:
    """Issues token pairs and remembers the refresh tokens it issued. Thread-safe."""

    def __init__(
        self, codec: TokenCodec, *, access_ttl_s: int, refresh_ttl_s: int, grace_s: float
    ) -> None:
        self._codec = codec
        self._access_ttl_s = access_ttl_s
        self._refresh_ttl_s = refresh_ttl_s
        self._grace_s = grace_s
        self._records: dict[str, _RefreshRecord] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        *,
        sub: str,
        name: str,
        now: float,
        access_ttl_s: int | None = None,
        refresh_ttl_s: int | None = None,
    ) -> TokenPair:
        """A new pair starting a new family (a login). The TTLs override the defaults."""
        with self._lock:
            return self._issue(
                sub=sub,
                name=name,
                now=now,
                family=uuid.uuid4().hex,
                access_ttl_s=self._access_ttl_s if access_ttl_s is None else access_ttl_s,
                refresh_ttl_s=self._refresh_ttl_s if refresh_ttl_s is None else refresh_ttl_s,
            )

    def rotate(self, refresh_token: str, *, now: float) -> TokenPair:
        """The successor pair of a refresh token (docs/scenarios.md#z9), or RefreshRefused (Z8)."""
        with self._lock:
            self._sweep(now)
            try:
                claims = self._codec.decode(refresh_token, typ="refresh", now=now)
            except TokenRejected as rejected:
                if rejected.reason == "expired":
                    self._forget_expired(refresh_token, now)
                raise RefreshRefused(rejected.detail) from None
            record = self._records.get(claims.jti)
            if record is None:
                raise RefreshRefused("unknown refresh token")
            if record.successor is not None and record.rotated_at is not None:
                if now - record.rotated_at <= self._grace_s:
                    return record.successor
                family = record.family
                revoked = self._revoke(lambda r: r.family == family)
                log.warning(
                    "refresh token reused after rotation: family of sub=%s revoked (%d tokens)",
                    record.sub,
                    revoked,
                )
                raise RefreshRefused("refresh token already used; the session is revoked")
            pair = self._issue(
                sub=record.sub,
                name=record.name,
                now=now,
                family=record.family,
                access_ttl_s=self._access_ttl_s,
                refresh_ttl_s=self._refresh_ttl_s,
            )
            record.rotated_at = now
            record.successor = pair
            log.info("refresh token rotated for sub=%s", record.sub)
            return pair

    def revoke_person(self, refresh_token: str, *, now: float) -> int:
        """Revoke every refresh token of its person (docs/scenarios.md#z3); how many were live.

        Only a token that still works may do this, so a stale, revoked token cannot end the
        sessions somebody started later. Anything else revokes nothing (and is not an error:
        logging out is idempotent).
        """
        with self._lock:
            self._sweep(now)
            try:
                claims = self._codec.decode(refresh_token, typ="refresh", now=now)
            except TokenRejected:
                return 0
            record = self._records.get(claims.jti)
            if record is None or not self._usable(record, now):
                return 0
            sub = record.sub
            revoked = self._revoke(lambda r: r.sub == sub, live_at=now)
            log.info("logout: %d refresh tokens of sub=%s revoked", revoked, sub)
            return revoked

    def _issue(
        self,
        *,
        sub: str,
        name: str,
        now: float,
        family: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
    ) -> TokenPair:
        access = self._codec.mint(sub=sub, name=name, typ="access", now=now, ttl_s=access_ttl_s)
        refresh = self._codec.mint(sub=sub, name=name, typ="refresh", now=now, ttl_s=refresh_ttl_s)
        self._records[refresh.jti] = _RefreshRecord(
            sub=sub, name=name, family=family, expires_at=refresh.exp
        )
        return TokenPair(self._codec.encode(access), self._codec.encode(refresh))

    def _usable(self, record: _RefreshRecord, now: float) -> bool:
        if now >= record.expires_at:
            return False
        return record.rotated_at is None or now - record.rotated_at <= self._grace_s

    def _revoke(
        self, selects: Callable[[_RefreshRecord], bool], *, live_at: float | None = None
    ) -> int:
        """Forget the selected records; count the usable ones (all when `live_at` is None)."""
        chosen = [jti for jti, record in self._records.items() if selects(record)]
        count = 0
        for jti in chosen:
            record = self._records.pop(jti)
            if live_at is None or self._usable(record, live_at):
                count += 1
        return count

    def _forget_expired(self, refresh_token: str, now: float) -> None:
        try:
            claims = self._codec.decode(refresh_token, typ="refresh", now=now, check_expiry=False)
        except TokenRejected:
            return
        self._records.pop(claims.jti, None)

    def _sweep(self, now: float) -> None:
        """Drop records whose token has expired; a reused token is detectable until then."""
        expired = [jti for jti, r in self._records.items() if now >= r.expires_at]
        for jti in expired:
            del self._records[jti]
