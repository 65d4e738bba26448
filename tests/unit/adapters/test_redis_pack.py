"""The lean connections pack every command into the same bytes as redis-py's own Python packer
(tggate.adapters.redis_pool): hiredis for what it takes, redis-py for the rest, and the same
error for what neither takes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from tggate.adapters.redis_pool import LEAN_CONNECTIONS

_LEAN = LEAN_CONNECTIONS[Connection]

_NAMES = st.sampled_from(
    ["GET", "SET", "EVALSHA", "SCRIPT LOAD", "CLIENT SETINFO", b"GET", b"CONFIG GET", "é"]
)
_VALUES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.binary(max_size=10).map(memoryview),
)


def _packed(connection: Connection, args: tuple[Any, ...]) -> bytes:
    return b"".join(bytes(chunk) for chunk in connection.pack_command(*args))


@given(name=_NAMES, values=st.lists(_VALUES, max_size=8))
def test_every_command_is_packed_as_redis_py_packs_it(name: Any, values: list[Any]) -> None:
    args = (name, *values)
    assert _packed(_LEAN(), args) == _packed(Connection(), args)


def test_another_encoding_is_packed_by_redis_py() -> None:
    args = ("SET", "ключ", "é")
    lean = _packed(_LEAN(encoding="latin-1", encoding_errors="replace"), args)
    assert lean == _packed(Connection(encoding="latin-1", encoding_errors="replace"), args)
    assert lean != _packed(_LEAN(), args)


@pytest.mark.parametrize("value", [True, None, {"a": 1}, [1]])
def test_what_neither_takes_is_refused_as_redis_py_refuses_it(value: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "key", value)
    with pytest.raises(DataError):
        _LEAN().pack_command("SET", "key", value)
