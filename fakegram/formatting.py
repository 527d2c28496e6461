"""Text formatting the way the Bot API does it.

HTML ``parse_mode`` text (the only mode the bot uses) is turned into plain text plus
``MessageEntity`` dicts (offsets and lengths in UTF-16 code units, as Telegram counts them), and
malformed markup is rejected with Telegram's own ``can't parse entities`` wording, so a bot that
leaves an HTML tag open fails in tests exactly as it would in production. Other parse modes are
refused ("unsupported parse_mode").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EntityParseError",
    "detect_entities",
    "parse_text",
    "utf16_len",
]

Entity = dict[str, Any]


class EntityParseError(ValueError):
    """Markup could not be parsed; ``str(err)`` is Telegram's detail text."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's entity unit)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


class _Builder:
    """Accumulates plain text while tracking the UTF-16 position."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pos += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _finish(entities: list[Entity]) -> list[Entity]:
    kept = [e for e in entities if e["length"] > 0]
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return kept


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Apply ``parse_mode`` to ``text``; returns ``(plain_text, entities)``.

    Raises :class:`EntityParseError` for malformed markup and ``ValueError``
    (with Telegram's message) for an unknown parse mode.
    """
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    # MarkdownV2 and Markdown are refused loudly: the bot sends HTML only (its default parse
    # mode), so a Markdown text in a test is a mistake to see, not a format to imitate.
    raise ValueError("unsupported parse_mode")


# --------------------------------------------------------------------- HTML

_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+)(;?)")


def _decode_entity(src: str, i: int) -> tuple[str, int]:
    """Decode an HTML entity at ``src[i] == '&'``; returns (text, new_index)."""
    m = _ENTITY_RE.match(src, i)
    if not m:
        return "&", i + 1
    body = m.group(1)
    if body.startswith("#"):
        try:
            code = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
        except ValueError:
            return "&", i + 1
        if 0xD800 <= code <= 0xDFFF:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        if code == 0 or code > 0x10FFFF:
            return m.group(0), m.end()
        return chr(code), m.end()
    name = body.lower() if body.lower() in _NAMED_ENTITIES else body
    if name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name], m.end()
    return "&", i + 1


@dataclass
class _OpenTag:
    name: str
    start: int
    attrs: dict[str, str] = field(default_factory=dict)
    language: str | None = None


def _html_unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            piece, i = _decode_entity(value, i)
            out.append(piece)
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _normalize_url(url: str) -> str:
    url = url.strip()
    if url and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url):
        url = "http://" + url
    return url


def _link_entity(url: str, offset: int, length: int) -> Entity:
    m = re.match(r"^tg://user\?id=(\d+)$", url)
    if m:
        user = {"id": int(m.group(1)), "is_bot": False, "first_name": ""}
        return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    return {"type": "text_link", "offset": offset, "length": length, "url": url}


def parse_html(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[Entity] = []
    stack: list[_OpenTag] = []
    n = len(src)
    i = 0
    while i < n:
        c = src[i]
        if c == "&":
            piece, i = _decode_entity(src, i)
            out.add(piece)
            continue
        if c != "<":
            j = i
            while j < n and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
            continue
        tag_at = _byte_offset(src, i)
        if i + 1 < n and src[i + 1] == "/":
            # ---- end tag
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {tag_at}")
            j = i + 2
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            name = src[i + 2 : j].lower()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {tag_at}")
            top = stack[-1]
            if name and name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {tag_at}, "
                    f'expected "</{top.name}>", found "</{name}>"'
                )
            stack.pop()
            _close_html_tag(top, out.pos, entities, stack, out)
            i = j + 1
            continue
        # ---- start tag
        j = i + 1
        while j < n and not src[j].isspace() and src[j] not in ">/":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {tag_at}")
        name = src[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {tag_at}')
        attrs: dict[str, str] = {}
        while True:
            while j < n and src[j].isspace():
                j += 1
            if j >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {tag_at}')
            if src[j] == ">":
                j += 1
                break
            if src[j] == "/" and j + 1 < n and src[j + 1] == ">":
                j += 2
                break
            k = j
            while k < n and not src[k].isspace() and src[k] not in "=>":
                k += 1
            attr = src[j:k].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {tag_at}'
                )
            while k < n and src[k].isspace():
                k += 1
            if k < n and src[k] == "=":
                k += 1
                while k < n and src[k].isspace():
                    k += 1
                if k >= n:
                    raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {tag_at}')
                if src[k] in "\"'":
                    quote = src[k]
                    end = src.find(quote, k + 1)
                    if end < 0:
                        raise EntityParseError(f"Unclosed start tag at byte offset {tag_at}")
                    value = src[k + 1 : end]
                    k = end + 1
                else:
                    start = k
                    while k < n and not src[k].isspace() and src[k] != ">":
                        k += 1
                    if k >= n:
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {_byte_offset(src, k)}"
                        )
                    value = src[start:k]
                attrs[attr] = _html_unescape(value)
            else:
                attrs[attr] = ""
            j = k
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        stack.append(_OpenTag(name=name, start=out.pos, attrs=attrs))
        i = j
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), _finish(entities)


def _close_html_tag(
    tag: _OpenTag,
    end: int,
    entities: list[Entity],
    stack: list[_OpenTag],
    out: _Builder,
) -> None:
    kind = _HTML_TAGS[tag.name]
    length = end - tag.start
    if kind == "text_link":
        url = tag.attrs.get("href")
        if url is None:
            inner = _tail_utf16(out, length)
            if re.match(r"^(https?://)?[\w.-]+\.[a-z]{2,}(/\S*)?$", inner):
                entities.append(_link_entity(_normalize_url(inner), tag.start, length))
            return
        if url:
            entities.append(_link_entity(_normalize_url(url), tag.start, length))
        return
    if kind == "code":
        cls = tag.attrs.get("class", "")
        language = cls[len("language-") :] if cls.startswith("language-") else ""
        parent = stack[-1] if stack else None
        if language and parent is not None and parent.name == "pre" and parent.start == tag.start:
            parent.language = language
            return
        entities.append({"type": "code", "offset": tag.start, "length": length})
        return
    if kind == "pre":
        entity: Entity = {"type": "pre", "offset": tag.start, "length": length}
        if tag.language:
            entity["language"] = tag.language
        entities.append(entity)
        return
    if kind == "blockquote":
        expandable = "expandable" in tag.attrs
        entities.append(
            {
                "type": "expandable_blockquote" if expandable else "blockquote",
                "offset": tag.start,
                "length": length,
            }
        )
        return
    if kind == "custom_emoji":
        emoji_id = tag.attrs.get("emoji-id", "")
        if emoji_id:
            entities.append(
                {
                    "type": "custom_emoji",
                    "offset": tag.start,
                    "length": length,
                    "custom_emoji_id": emoji_id,
                }
            )
        return
    entities.append({"type": kind, "offset": tag.start, "length": length})


def _tail_utf16(out: _Builder, length: int) -> str:
    text = out.text()
    encoded = text.encode("utf-16-le")
    return encoded[len(encoded) - 2 * length :].decode("utf-16-le", errors="replace")


# ---------------------------------------------------------- auto-detection

_AUTO_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("bot_command", re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/])")),
    ("url", re.compile(r"(?<![\w@])(?:https?://)[^\s<>\"]+[^\s<>\".,;:!?)\]]")),
    ("email", re.compile(r"(?<![\w.])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("mention", re.compile(r"(?<![\w@])@[a-zA-Z][a-zA-Z0-9_]{3,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
]


def detect_entities(text: str) -> list[Entity]:
    """Entities the Telegram client/server detects in a user's plain text."""
    taken: list[tuple[int, int]] = []
    found: list[Entity] = []
    for kind, pattern in _AUTO_PATTERNS:
        for m in pattern.finditer(text):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue
            taken.append((s, e))
            found.append(
                {"type": kind, "offset": utf16_len(text[:s]), "length": utf16_len(m.group(0))}
            )
    return _finish(found)
