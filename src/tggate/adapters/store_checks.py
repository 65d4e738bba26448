"""Argument checks shared by the session stores, so both refuse the same bad calls alike."""

from __future__ import annotations

__all__ = ["require_positive", "require_shard"]


def require_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def require_shard(shard: int, shards: int) -> None:
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"need 0 <= shard < shards, got shard={shard}, shards={shards}")
