"""Redis memory per session and per answered command (issue 5 item 6, issue 11 item 8), from
`INFO memory` over 100k records each.

An embedded redis-server of its own (the same binary and options as tggate's). Each measurement
starts from an empty database: `used_memory` before, 100k records written in the exact layout of
`tggate.adapters.redis_store` (its own key builder and encoding), `used_memory` after; the
difference divided by 100k. The embedded server keeps hashes with values up to 1024 bytes
compact (`hash-max-ziplist-value`); the figures with Redis' default (64) are there too. Sessions
are sealed as the topology runs (TGGATE_SESSION_KEYS: compressed, AES-GCM); the same without
encryption is in the figures too.
- Anonymous: the session hash of a pending code login (login token from `secrets`, 43
  characters; the prompt the reference module shows), its TTL, its entry in the bucket's index.
- Authorized: the session hash with a real JWT pair of the reference Authorization module
  (HS256; sizes in the details), its entry in the bucket's index.
- Idempotency record: what every handled command leaves for `update_ttl_s` (24 h by default):
  a field of the chat's answers hash, written by `finish_update` itself (here a `/me` reply):
  not encrypted "<expiry minute>:<the replies, compactly>"; sealed as deployed, bytes: a format
  byte, the expiry minute in 4, then AES-GCM (nonce, tag) of the replies deflated against the
  bot's own texts (`SessionCodec.encode_record`). The hash is the chat's, so what one record costs
  depends on how many commands a chat sends a day: 10 (100k commands of 10k chats) and 1
  (100k chats, one command each: the hash's own cost falls on that one record), plain and
  sealed; and a U1 login offer at 10 a chat, plain and sealed.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from pathlib import Path

import redis
import redis.asyncio

from bench.common import Result, mint_access_tokens, seed_anonymous, seed_authorized, used_memory
from tggate.adapters.embedded_redis import EmbeddedRedis
from tggate.adapters.redis_store import RedisSessionStore
from tggate.adapters.token_cipher import TokenCipher
from tggate.core.machine import login_offer
from tggate.core.replies import Reply

__all__ = ["run_redis_memory"]

N = 100_000
_ME = (Reply("👤 Алиса Иванова\nLogin: alice\nRole: student"),)
_OFFER = (login_offer("en"),)  # U1: what an Unknown chat's command is answered


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


def _configure(url: str, name: str, value: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.config_set(name, value)
    finally:
        client.close()


def _updates(
    url: str,
    *,
    per_chat: int,
    answer: tuple[Reply, ...] = _ME,
    cipher: TokenCipher | None = None,
) -> None:
    """N answered commands, `per_chat` of each chat, as Bot Logic records them (sealed when
    `cipher` is given)."""

    async def write() -> None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=32)
        client = redis.asyncio.Redis.from_pool(pool)
        store = RedisSessionStore(client, cipher=cipher)
        try:
            for start in range(0, N, 2000):
                await asyncio.gather(
                    *(
                        store.finish_update(
                            123_456_789 + n // per_chat,
                            7_000_000 + n,
                            answer,
                            owner="o",
                            ttl_s=86_400,
                        )
                        for n in range(start, start + 2000)
                    )
                )
        finally:
            await client.aclose()

    asyncio.run(write())


def run_redis_memory(result: Result) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tggate-bench-memory-"))
    try:
        with EmbeddedRedis(data_dir=workdir) as server:
            url = server.url
            chats = range(1, N + 1)
            tokens = mint_access_tokens("x" * 43, {c: f"user{c}" for c in chats})
            access, refresh = tokens[1]
            logins = {c: _login_token(c) for c in chats}
            cipher = TokenCipher([TokenCipher.generate_key()])
            # No AOF here: its buffers (and a rewrite's, once the file has grown) count in
            # used_memory, and this measures what the records themselves take.
            _configure(url, "appendonly", "no")
            per: dict[str, float] = {}
            writers = {
                "anonymous": lambda: seed_anonymous(url, logins, cipher=cipher),
                "authorized": lambda: seed_authorized(url, tokens, cipher=cipher),
                "anonymous, tokens not encrypted": lambda: seed_anonymous(url, logins),
                "authorized, tokens not encrypted": lambda: seed_authorized(url, tokens),
                "update record, 10 a chat": lambda: _updates(url, per_chat=10),
                "update record, sealed, 10 a chat": lambda: _updates(
                    url, per_chat=10, cipher=cipher
                ),
                "update record, 1 a chat": lambda: _updates(url, per_chat=1),
                "update record of a U1 login offer, 10 a chat": lambda: _updates(
                    url, per_chat=10, answer=_OFFER
                ),
                "update record, sealed, 1 a chat": lambda: _updates(url, per_chat=1, cipher=cipher),
                "update record of a U1 login offer, sealed, 10 a chat": lambda: _updates(
                    url, per_chat=10, answer=_OFFER, cipher=cipher
                ),
            }
            # As tggate's embedded Redis runs, then with Redis' own default (64 bytes), at
            # which a hash with one value over 64 bytes becomes a full hash table.
            for setting in (None, "64"):
                if setting is not None:
                    _configure(url, "hash-max-ziplist-value", setting)
                for name, write in writers.items():
                    _flush(url)
                    before = used_memory(url)
                    write()
                    label = name if setting is None else f"{name}, Redis default encoding"
                    per[label] = (used_memory(url) - before) / N
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.details = {
        "records": N,
        "bytes_per_record": {k: round(v, 1) for k, v in per.items()},
        "access_token_bytes": len(access),
        "sealed_access_token_bytes": len(
            TokenCipher([TokenCipher.generate_key()]).seal_text(access)
        ),
        "refresh_token_bytes": len(refresh),
        "login_token_bytes": len(_login_token(1)),
        "me_answer_text_bytes": len(_ME[0].text.encode()),
    }
    result.add("per Anonymous session (tokens encrypted, as deployed)", per["anonymous"], "bytes")
    result.add("per Authorized session (tokens encrypted, as deployed)", per["authorized"], "bytes")
    result.add(
        "per Anonymous session, not encrypted", per["anonymous, tokens not encrypted"], "bytes"
    )
    result.add(
        "per Authorized session, not encrypted", per["authorized, tokens not encrypted"], "bytes"
    )
    result.add(
        "per Authorized session with Redis' default hash-max-ziplist-value (64)",
        per["authorized, Redis default encoding"],
        "bytes",
    )
    result.add(
        "per Anonymous session with Redis' default hash-max-ziplist-value (64)",
        per["anonymous, Redis default encoding"],
        "bytes",
    )
    result.add(
        "per idempotency record (each command, kept 24 h), 10 commands a chat",
        per["update record, 10 a chat"],
        "bytes",
    )
    result.add(
        "per idempotency record, sealed (as deployed), 10 commands a chat",
        per["update record, sealed, 10 a chat"],
        "bytes",
    )
    result.add(
        "per idempotency record, 1 command a chat (the chat's hash on it alone)",
        per["update record, 1 a chat"],
        "bytes",
    )
    result.add(
        "per idempotency record of a U1 login offer, 10 commands a chat",
        per["update record of a U1 login offer, 10 a chat"],
        "bytes",
    )
    result.add(
        "per idempotency record, sealed, 1 command a chat",
        per["update record, sealed, 1 a chat"],
        "bytes",
    )
    result.add(
        "per idempotency record of a U1 login offer, sealed, 10 commands a chat",
        per["update record of a U1 login offer, sealed, 10 a chat"],
        "bytes",
    )
    result.add("1M Authorized sessions", per["authorized"] * 1e6 / 2**20, "MiB")
    result.add("access JWT size", len(access), "bytes")


def _login_token(chat_id: int) -> str:
    return secrets.token_urlsafe(32)  # as Bot Logic makes them: 43 characters
