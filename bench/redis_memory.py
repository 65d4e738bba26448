"""Redis memory per session (issue 5, item 6), from `INFO memory` over 100k sessions each.

An embedded redis-server of its own (the same binary and options as tggate's). Each measurement
starts from an empty database: `used_memory` before, 100k records written in the exact layout of
`tggate.adapters.redis_store`, `used_memory` after; the difference divided by 100k.
The embedded server keeps hashes with values up to 1024 bytes compact
(`hash-max-ziplist-value`); the figures with Redis' default (64) are there too. Tokens are
sealed with Fernet as the topology runs (TGGATE_SESSION_KEYS); the same without
encryption is in the figures too.
- Anonymous: the session hash of a pending code login (login token from `secrets`, 43
  characters; the prompt the reference module shows), its TTL, its entry in the index set.
- Authorized: the session hash with a real JWT pair of the reference Authorization module
  (HS256; sizes in the details), its entry in the index set.
- Idempotency record: what every handled command leaves for `update_ttl_s` (24 h by default):
  `tggate:{chat}:update:<update_id>` holding "done:" and the answer (here a `/me` reply).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path

import redis

from bench.common import Result, mint_access_tokens, seed_anonymous, seed_authorized, used_memory
from tggate.adapters.embedded_redis import EmbeddedRedis
from tggate.adapters.token_cipher import TokenCipher

__all__ = ["run_redis_memory"]

N = 100_000
_ANSWER = json.dumps(
    {
        "replies": [
            {
                "chat_id": 123456789,
                "text": "👤 Алиса Иванова\nLogin: alice\nRole: student",
                "buttons": [],
            }
        ]
    },
    ensure_ascii=False,
)


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


def _updates(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for start in range(0, N, 5000):
            pipe = client.pipeline(transaction=False)
            for chat_id in range(start + 1, start + 5001):
                pipe.set(f"tggate:{{{chat_id}}}:update:{chat_id * 7}", "done:" + _ANSWER, ex=86400)
            pipe.execute()
    finally:
        client.close()


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
                "update record": lambda: _updates(url),
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
        "update_answer_bytes": len(("done:" + _ANSWER).encode()),
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
    result.add("per idempotency record (each command, kept 24 h)", per["update record"], "bytes")
    result.add("1M Authorized sessions", per["authorized"] * 1e6 / 2**20, "MiB")
    result.add("access JWT size", len(access), "bytes")


def _login_token(chat_id: int) -> str:
    return secrets.token_urlsafe(32)  # as Bot Logic makes them: 43 characters
