"""Text formatting the way the Bot API does it.

``parse_mode`` text is turned into plain text plus ``MessageEntity`` dicts
(offsets and lengths in UTF-16 code units, as Telegram counts them), and
malformed markup is rejected with Telegram's own ``can't parse entities``
wording, so a bot that forgets to escape ``.`` in MarkdownV2 or leaves an
HTML tag open fails in tests exactly as it would in production.
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
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
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


# --------------------------------------------------------------- MarkdownV2

_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")


@dataclass
class _MdOpen:
    kind: str
    start: int
    byte_at: int


def _read_until(src: str, i: int, closer: str) -> int:
    """Index of the next unescaped ``closer`` at or after ``i`` (or -1)."""
    n = len(src)
    while i < n:
        if src[i] == "\\" and i + 1 < n:
            i += 2
            continue
        if src.startswith(closer, i):
            return i
        i += 1
    return -1


def _unescape_code(body: str) -> str:
    return re.sub(r"\\([`\\])", r"\1", body)


def parse_markdown_v2(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[Entity] = []
    stack: list[_MdOpen] = []
    n = len(src)
    i = 0
    quote_start: int | None = None
    quote_expandable = False

    def close_quote() -> None:
        nonlocal quote_start, quote_expandable
        if quote_start is not None:
            kind = "expandable_blockquote" if quote_expandable else "blockquote"
            entities.append({"type": kind, "offset": quote_start, "length": out.pos - quote_start})
        quote_start = None
        quote_expandable = False

    while i < n:
        c = src[i]
        at_line_start = i == 0 or src[i - 1] in "\n\r"
        if at_line_start:
            if src.startswith("**>", i) and quote_start is None:
                quote_start = out.pos
                i += 3
                continue
            if c == ">":
                if quote_start is None:
                    quote_start = out.pos
                i += 1
                continue
            if quote_start is not None and c not in "\n\r":
                close_quote()
        if c == "\\":
            if i + 1 < n and 0 < ord(src[i + 1]) < 127:
                out.add(src[i + 1])
                i += 2
            else:
                out.add("\\")
                i += 1
            continue
        if c in "\n\r":
            out.add(c)
            i += 1
            continue
        if (
            c == "|"
            and src.startswith("||", i)
            and quote_start is not None
            and (i + 2 == n or src[i + 2] in "\n\r")
            and not (stack and stack[-1].kind == "spoiler")
        ):
            quote_expandable = True
            i += 2
            continue
        if c == "`":
            byte_at = _byte_offset(src, i)
            if src.startswith("```", i):
                end = _read_until(src, i + 3, "```")
                body = src[i + 3 : end] if end >= 0 else src[i + 3 :]
                if end < 0:
                    has_lang = bool(re.match(r"^[^\s`]+[\s]", body))
                    kind = "PreCode" if has_lang else "Pre"
                    raise EntityParseError(
                        f"Can't find end of {kind} entity at byte offset {byte_at}"
                    )
                language = ""
                m = re.match(r"^([^\s`]+)[\r\n]+", body) or re.match(r"^([^\s`]+) ", body)
                if m:
                    language = m.group(1)
                    body = body[m.end() :] if body[m.end(1)] in "\r\n" else body[m.end(1) :]
                start = out.pos
                out.add(_unescape_code(body))
                entity: Entity = {"type": "pre", "offset": start, "length": out.pos - start}
                if language:
                    entity["language"] = language
                entities.append(entity)
                i = end + 3
                continue
            end = _read_until(src, i + 1, "`")
            if end < 0:
                raise EntityParseError(f"Can't find end of Code entity at byte offset {byte_at}")
            start = out.pos
            out.add(_unescape_code(src[i + 1 : end]))
            entities.append({"type": "code", "offset": start, "length": out.pos - start})
            i = end + 1
            continue
        marker: str | None = None
        width = 1
        if c == "*":
            marker = "bold"
        elif c == "_":
            if src.startswith("__", i):
                marker, width = "underline", 2
            else:
                marker = "italic"
        elif c == "~":
            marker = "strikethrough"
        elif c == "|" and src.startswith("||", i):
            marker, width = "spoiler", 2
        if marker is not None:
            if stack and stack[-1].kind == marker:
                top = stack.pop()
                entities.append(
                    {"type": marker, "offset": top.start, "length": out.pos - top.start}
                )
            else:
                stack.append(_MdOpen(marker, out.pos, _byte_offset(src, i)))
            i += width
            continue
        if c == "[" or (c == "!" and src.startswith("![", i)):
            kind = "custom_emoji" if c == "!" else "text_link"
            stack.append(_MdOpen(kind, out.pos, _byte_offset(src, i)))
            i += 2 if c == "!" else 1
            continue
        if c == "]" and stack and stack[-1].kind in ("text_link", "custom_emoji"):
            top = stack.pop()
            i += 1
            url = ""
            if i < n and src[i] == "(":
                end = _read_until(src, i + 1, ")")
                if end < 0:
                    what = "a custom emoji URL" if top.kind == "custom_emoji" else "a URL"
                    raise EntityParseError(
                        f"Can't find end of {what} at byte offset {_byte_offset(src, i + 1)}"
                    )
                url = re.sub(r"\\(.)", r"\1", src[i + 1 : end])
                i = end + 1
            length = out.pos - top.start
            if top.kind == "custom_emoji":
                m = re.search(r"[?&]id=(\d+)", url)
                if not url:
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                if not m:
                    raise EntityParseError("Custom emoji URL must have an emoji identifier")
                entities.append(
                    {
                        "type": "custom_emoji",
                        "offset": top.start,
                        "length": length,
                        "custom_emoji_id": m.group(1),
                    }
                )
            else:
                if not url:
                    url = out.text()[-length:] if length else ""
                if url and ("." in url or url.startswith("tg:") or re.match(r"^[a-z]+://", url)):
                    entities.append(_link_entity(_normalize_url(url), top.start, length))
            continue
        if c in _MD2_RESERVED:
            raise EntityParseError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        j = i + 1
        while j < n and src[j] not in _MD2_RESERVED and src[j] not in "\\\n\r":
            j += 1
        out.add(src[i:j])
        i = j
    if stack:
        top = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD2_NAMES[top.kind]} entity at byte offset {top.byte_at}"
        )
    close_quote()
    return out.text(), _finish(entities)


# ----------------------------------------------------------------- Markdown


def parse_markdown(src: str) -> tuple[str, list[Entity]]:
    """Legacy ``Markdown`` mode: ``*bold*``, ``_italic_``, code, pre, links."""
    out = _Builder()
    entities: list[Entity] = []
    n = len(src)
    i = 0
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if c in "*_`[":
            byte_at = _byte_offset(src, i)
            error = EntityParseError(
                f"Can't find end of the entity starting at byte offset {byte_at}"
            )
            start = out.pos
            if src.startswith("```", i):
                end = src.find("```", i + 3)
                if end < 0:
                    raise error
                body = src[i + 3 : end]
                language = ""
                m = re.match(r"^([^\s`]+)\n", body)
                if m:
                    language, body = m.group(1), body[m.end() :]
                out.add(body)
                entity: Entity = {"type": "pre", "offset": start, "length": out.pos - start}
                if language:
                    entity["language"] = language
                entities.append(entity)
                i = end + 3
                continue
            if c == "[":
                close = src.find("]", i + 1)
                if close < 0:
                    raise error
                label = src[i + 1 : close]
                url = ""
                j = close + 1
                if j < n and src[j] == "(":
                    end = src.find(")", j + 1)
                    if end < 0:
                        raise error
                    url = src[j + 1 : end]
                    j = end + 1
                out.add(label)
                if url:
                    entities.append(_link_entity(_normalize_url(url), start, out.pos - start))
                i = j
                continue
            end = src.find(c, i + 1)
            if end < 0:
                raise error
            out.add(src[i + 1 : end])
            kind = {"*": "bold", "_": "italic", "`": "code"}[c]
            entities.append({"type": kind, "offset": start, "length": out.pos - start})
            i = end + 1
            continue
        j = i + 1
        while j < n and src[j] not in "*_`[\\":
            j += 1
        out.add(src[i:j])
        i = j
    return out.text(), _finish(entities)


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
