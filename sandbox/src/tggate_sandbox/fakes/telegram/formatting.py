"""Telegram's parse modes: turn marked-up text into plain text + entities, or fail like Telegram.

HTML follows the behaviour of tdlib's `parse_html` closely (its error texts and byte offsets);
MarkdownV2 and the legacy Markdown are lighter: balanced markers and MarkdownV2's reserved
characters, which are the mistakes bots actually make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["EntityParseError", "UnsupportedParseMode", "parse_entities", "utf16_length"]

Entity = dict[str, object]


class EntityParseError(ValueError):
    """The text does not parse in its parse mode (becomes "can't parse entities: ...")."""


class UnsupportedParseMode(ValueError):
    pass


def utf16_length(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def parse_entities(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Plain text and entities for `text` in `parse_mode` (None or "" for plain text)."""
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return _Html(text).parse()
    if mode == "markdownv2":
        return _MarkdownV2(text).parse()
    if mode == "markdown":
        return _Markdown(text).parse()
    raise UnsupportedParseMode(parse_mode)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


@dataclass
class _Output:
    parts: list[str] = field(default_factory=list)
    utf16: int = 0
    entities: list[Entity] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.utf16 += utf16_length(text)

    def entity(self, kind: str, start: int, **extra: object) -> None:
        length = self.utf16 - start
        if length > 0:
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[Entity]]:
        ordered = sorted(self.entities, key=lambda e: (e["offset"], -int(str(e["length"]))))
        return "".join(self.parts), ordered


# ---- HTML ----

_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
}
_HTML_TAGS = frozenset({*_SIMPLE_TAGS, "a", "span", "pre", "blockquote", "tg-emoji", "tg-time"})


def _decode_html_entity(text: str, index: int) -> tuple[str, int] | None:
    match = _HTML_ENTITY.match(text, index)
    if match is None:
        return None
    name = match.group(1)
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), match.end()
    decoded = _HTML_ENTITIES.get(name)
    return None if decoded is None else (decoded, match.end())


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int


class _Html:
    def __init__(self, text: str):
        self.text = text
        self.out = _Output()
        self.open: list[_OpenTag] = []

    def fail(self, message: str) -> EntityParseError:
        return EntityParseError(message)

    def at(self, index: int) -> int:
        return _byte_offset(self.text, index)

    def parse(self) -> tuple[str, list[Entity]]:
        text, i = self.text, 0
        while i < len(text):
            ch = text[i]
            if ch == "&":
                decoded = _decode_html_entity(text, i)
                if decoded is None:
                    self.out.add("&")
                    i += 1
                else:
                    self.out.add(decoded[0])
                    i = decoded[1]
            elif ch != "<":
                j = i
                while j < len(text) and text[j] not in "<&":
                    j += 1
                self.out.add(text[i:j])
                i = j
            elif i + 1 < len(text) and text[i + 1] == "/":
                i = self.end_tag(i)
            else:
                i = self.start_tag(i)
        if self.open:
            raise self.fail(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1].name}"'
            )
        return self.out.result()

    def start_tag(self, begin: int) -> int:
        text, j = self.text, begin + 1
        while j < len(text) and not text[j].isspace() and text[j] != ">":
            j += 1
        name = text[begin + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise self.fail(f'Unsupported start tag "{name}" at byte offset {self.at(begin)}')
        attributes: dict[str, str] = {}
        while True:
            while j < len(text) and text[j].isspace():
                j += 1
            if j >= len(text):
                raise self.fail(f"Unclosed start tag at byte offset {self.at(begin)}")
            if text[j] == ">":
                break
            name_begin = j
            while j < len(text) and not text[j].isspace() and text[j] not in "=>":
                j += 1
            attribute = text[name_begin:j].lower()
            if not attribute:
                raise self.fail(
                    f'Empty attribute name in the tag "{name}" at byte offset {self.at(begin)}'
                )
            while j < len(text) and text[j].isspace():
                j += 1
            if j < len(text) and text[j] != "=":
                attributes[attribute] = ""  # a bare attribute, like <blockquote expandable>
                continue
            j += 1
            while j < len(text) and text[j].isspace():
                j += 1
            if j >= len(text):
                raise self.fail(f'Unclosed start tag "{name}" at byte offset {self.at(begin)}')
            if text[j] in "'\"":
                end = text.find(text[j], j + 1)
                if end < 0:
                    raise self.fail(f"Unclosed start tag at byte offset {self.at(begin)}")
                attributes[attribute] = _unescape(text[j + 1 : end])
                j = end + 1
            else:
                token_begin = j
                while j < len(text) and (text[j].isalnum() or text[j] in ".-"):
                    j += 1
                if j >= len(text) or (not text[j].isspace() and text[j] != ">"):
                    raise self.fail(
                        f"Unexpected end of name token at byte offset {self.at(token_begin)}"
                    )
                attributes[attribute] = text[token_begin:j].lower()
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise self.fail(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.at(begin)}'
            )
        self.open.append(_OpenTag(name, attributes, self.out.utf16))
        return j + 1

    def end_tag(self, begin: int) -> int:
        text = self.text
        if not self.open:
            raise self.fail(f"Unexpected end tag at byte offset {self.at(begin)}")
        j = begin + 2
        while j < len(text) and not text[j].isspace() and text[j] != ">":
            j += 1
        end_name = text[begin + 2 : j].lower()
        while j < len(text) and text[j].isspace():
            j += 1
        if j >= len(text) or text[j] != ">":
            raise self.fail(f"Unclosed end tag at byte offset {self.at(begin)}")
        tag = self.open.pop()
        if end_name and end_name != tag.name:
            raise self.fail(
                f"Unmatched end tag at byte offset {self.at(begin)}, "
                f'expected "</{tag.name}>", found "</{end_name}>"'
            )
        self.close(tag)
        return j + 1

    def close(self, tag: _OpenTag) -> None:
        out = self.out
        if tag.name == "code" and self.open and self.open[-1].name == "pre":
            css_class = tag.attributes.get("class", "")
            if css_class.startswith("language-"):
                self.open[-1].attributes["language"] = css_class.removeprefix("language-")
            return  # <pre><code class="language-x"> is one pre entity
        if tag.name in _SIMPLE_TAGS or tag.name == "span":
            out.entity(_SIMPLE_TAGS.get(tag.name, "spoiler"), tag.start)
        elif tag.name == "a":
            href = tag.attributes.get("href", "")
            if href:
                out.entity("text_link", tag.start, url=href)
        elif tag.name == "pre":
            pre_language = tag.attributes.get("language")
            if pre_language:
                out.entity("pre", tag.start, language=pre_language)
            else:
                out.entity("pre", tag.start)
        elif tag.name == "blockquote":
            expandable = "expandable" in tag.attributes
            out.entity("expandable_blockquote" if expandable else "blockquote", tag.start)
        elif tag.name == "tg-emoji" and tag.attributes.get("emoji-id"):
            out.entity("custom_emoji", tag.start, custom_emoji_id=tag.attributes["emoji-id"])


def _unescape(value: str) -> str:
    parts: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&" and (decoded := _decode_html_entity(value, i)) is not None:
            parts.append(decoded[0])
            i = decoded[1]
        else:
            parts.append(value[i])
            i += 1
    return "".join(parts)


# ---- MarkdownV2 ----

_RESERVED_V2 = frozenset("_*[]()~`>#+-=|{}.!")
_TDLIB_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _OpenMarker:
    kind: str
    start: int
    byte_offset: int
    language: str = ""


class _MarkdownV2:
    def __init__(self, text: str):
        self.text = text
        self.out = _Output()
        self.open: list[_OpenMarker] = []

    def parse(self) -> tuple[str, list[Entity]]:
        text, i = self.text, 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                self.out.add(text[i + 1])
                i += 2
                continue
            inner = self.open[-1].kind if self.open else None
            if inner in ("code", "pre") and ch != "`":
                self.out.add(ch)
                i += 1
                continue
            if ch not in _RESERVED_V2:
                self.out.add(ch)
                i += 1
                continue
            closing = self.closing_length(i)
            i = self.close(i, closing) if closing else self.start(i)
        if self.open:
            marker = self.open[-1]
            raise EntityParseError(
                f"Can't find end of {_TDLIB_NAMES[marker.kind]} entity "
                f"at byte offset {marker.byte_offset}"
            )
        return self.out.result()

    def closing_length(self, i: int) -> int:
        if not self.open:
            return 0
        text, kind = self.text, self.open[-1].kind
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if kind == "bold" and text[i] == "*":
            return 1
        if kind == "italic" and text[i] == "_" and nxt != "_":
            return 1
        if kind == "underline" and text[i] == "_" and nxt == "_":
            return 2
        if kind == "strikethrough" and text[i] == "~":
            return 1
        if kind == "spoiler" and text[i] == "|" and nxt == "|":
            return 2
        if kind == "code" and text[i] == "`":
            return 1
        if kind == "pre" and text.startswith("```", i):
            return 3
        if kind in ("text_link", "custom_emoji") and text[i] == "]":
            return 1
        return 0

    def start(self, i: int) -> int:
        text, ch = self.text, self.text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        at = _byte_offset(text, i)
        at_line_start = i == 0 or text[i - 1] == "\n"
        if ch == ">" and at_line_start:
            return i + 1  # a block quote line; the fake does not build blockquote entities
        if ch == "_":
            kind, width = ("underline", 2) if nxt == "_" else ("italic", 1)
        elif ch == "*":
            kind, width = "bold", 1
        elif ch == "~":
            kind, width = "strikethrough", 1
        elif ch == "|" and nxt == "|":
            kind, width = "spoiler", 2
        elif ch == "[":
            kind, width = "text_link", 1
        elif ch == "!" and nxt == "[":
            kind, width = "custom_emoji", 2
        elif ch == "`":
            if text.startswith("```", i):
                end_of_line = text.find("\n", i + 3)
                language = text[i + 3 : end_of_line] if end_of_line >= 0 else ""
                if end_of_line >= 0 and language and "`" not in language and " " not in language:
                    self.open.append(_OpenMarker("pre", self.out.utf16, at, language))
                    return end_of_line + 1
                self.open.append(_OpenMarker("pre", self.out.utf16, at))
                return i + 3
            kind, width = "code", 1
        else:
            raise EntityParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        self.open.append(_OpenMarker(kind, self.out.utf16, at))
        return i + width

    def close(self, i: int, width: int) -> int:
        marker = self.open.pop()
        i += width
        extra: dict[str, object] = {}
        if marker.kind in ("text_link", "custom_emoji"):
            url, i = self.link_target(i)
            if marker.kind == "custom_emoji":
                if not url.startswith("tg://emoji?id="):
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                extra["custom_emoji_id"] = url.removeprefix("tg://emoji?id=")
            elif url:
                extra["url"] = url
            else:
                return i  # [text] without a link is just text
        elif marker.kind == "pre" and marker.language:
            extra["language"] = marker.language
        self.out.entity(marker.kind, marker.start, **extra)
        return i

    def link_target(self, i: int) -> tuple[str, int]:
        text = self.text
        if i >= len(text) or text[i] != "(":
            return "", i
        j, url = i + 1, []
        while j < len(text) and text[j] != ")":
            if text[j] == "\\" and j + 1 < len(text):
                j += 1
            url.append(text[j])
            j += 1
        if j >= len(text):
            raise EntityParseError(
                f"Can't find end of a url at byte offset {_byte_offset(text, i)}"
            )
        return "".join(url), j + 1


# ---- Markdown (legacy) ----

_LEGACY_MARKERS = {"*": "bold", "_": "italic", "`": "code"}


class _Markdown:
    def __init__(self, text: str):
        self.text = text
        self.out = _Output()

    def parse(self) -> tuple[str, list[Entity]]:
        text, i = self.text, 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
                self.out.add(text[i + 1])
                i += 2
            elif ch in _LEGACY_MARKERS or ch == "[":
                i = self.entity(i)
            else:
                self.out.add(ch)
                i += 1
        return self.out.result()

    def unclosed(self, i: int) -> EntityParseError:
        return EntityParseError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(self.text, i)}"
        )

    def entity(self, i: int) -> int:
        text, ch, start = self.text, self.text[i], self.out.utf16
        if ch == "`" and text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise self.unclosed(i)
            self.out.add(text[i + 3 : end])
            self.out.entity("pre", start)
            return end + 3
        if ch == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise self.unclosed(i)
            self.out.add(text[i + 1 : end])
            if text.startswith("(", end + 1):
                close = text.find(")", end + 2)
                if close < 0:
                    raise self.unclosed(i)
                self.out.entity("text_link", start, url=text[end + 2 : close])
                return close + 1
            return end + 1
        end = text.find(ch, i + 1)
        if end < 0:
            raise self.unclosed(i)
        self.out.add(text[i + 1 : end])
        self.out.entity(_LEGACY_MARKERS[ch], start)
        return end + 1
