"""Splitting texts over 4096 characters into Telegram-sized messages (docs/contract.md#limits)."""

from __future__ import annotations

__all__ = ["MAX_MESSAGE", "split_text", "utf16_len"]

# Telegram counts message length in UTF-16 code units: an emoji outside the BMP counts twice.
MAX_MESSAGE = 4096


def utf16_len(text: str) -> int:
    # Encoded in C: counting characters above the BMP in Python took ~30 µs for a typical
    # reply, on every message sent (bench/README.md, "Profiles").
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many leading characters of `text` fit in `limit` UTF-16 code units."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Pieces of at most `limit` code units, cut at a line break, else a space, else anywhere.

    The separator a cut is made at is dropped; blank pieces are dropped (Telegram refuses them).
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return [text] if text.strip() else []  # one piece, the usual case
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _fitting(rest, limit)
        head = rest[:cut]
        for separator in ("\n", " "):
            at = head.rfind(separator)
            if at > 0:
                pieces.append(rest[:at])
                rest = rest[at + 1 :]
                break
        else:
            pieces.append(head)
            rest = rest[cut:]
    pieces.append(rest)
    return [piece for piece in pieces if piece.strip()]
