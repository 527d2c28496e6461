"""File identifiers, image sniffing and other media helpers."""

from __future__ import annotations

import base64
import hashlib
import itertools
import mimetypes
import os
import struct

__all__ = [
    "guess_mime",
    "image_size",
    "make_file_id",
    "make_unique_id",
    "photo_dimensions",
]

_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "video_note": "DQACAgIAAxkBAAI",
    "sticker": "CAACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "thumbnail": "AAMCAgADGQEAAI",
}

_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "video_note": "video_notes",
    "sticker": "stickers",
    "video": "videos",
    "audio": "music",
    "animation": "animations",
    "thumbnail": "thumbnails",
}

_DEFAULT_EXT = {
    "photo": "jpg",
    "voice": "oga",
    "video_note": "mp4",
    "sticker": "webp",
    "video": "mp4",
    "audio": "mp3",
    "animation": "mp4",
    "thumbnail": "jpg",
}

_counter = itertools.count(1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_file_id(kind: str, bot_id: int) -> str:
    """A fresh file_id that looks like Telegram's (opaque, url-safe)."""
    n = next(_counter)
    raw = struct.pack(">QI", bot_id & 0xFFFFFFFFFFFFFFFF, n) + os.urandom(10)
    return _FILE_ID_PREFIX.get(kind, "BQACAgIAAxkBAAI") + _b64(raw)


def make_unique_id(data: bytes, variant: str = "") -> str:
    """Stable for the same bytes (and the same photo size variant)."""
    digest = hashlib.sha256(data + variant.encode()).digest()
    return "AQAD" + _b64(digest[:12])


def file_folder(kind: str) -> str:
    return _FOLDERS.get(kind, "documents")


def file_extension(kind: str, file_name: str | None, mime_type: str | None) -> str:
    if file_name and "." in file_name:
        return file_name.rsplit(".", 1)[1].lower()
    if mime_type:
        ext = mimetypes.guess_extension(mime_type)
        if ext:
            return ext.lstrip(".")
    return _DEFAULT_EXT.get(kind, "bin")


def guess_mime(file_name: str | None, declared: str | None = None) -> str:
    if declared and declared not in ("application/octet-stream", ""):
        return declared
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name)
        if guessed:
            return guessed
    return "application/octet-stream"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width/height of PNG, GIF, JPEG or WebP bytes; None if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
            if data[12:16] == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w & 0x3FFF), int(h & 0x3FFF)
            if data[12:16] == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                length = struct.unpack(">H", data[i + 2 : i + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return int(w), int(h)
                i += 2 + length
    except (struct.error, IndexError):
        return None
    return None


def photo_dimensions(width: int, height: int) -> list[tuple[int, int, str]]:
    """The PhotoSize ladder Telegram builds: (w, h, size_letter), smallest first."""
    longest = max(width, height, 1)
    ladder: list[tuple[int, int, str]] = []
    for side, letter in ((90, "s"), (320, "m"), (800, "x"), (1280, "y"), (2560, "w")):
        if side < longest:
            scale = side / longest
            ladder.append((max(1, round(width * scale)), max(1, round(height * scale)), letter))
    if longest <= 2560:
        ladder.append((width, height, "y" if longest > 800 else "x"))
    else:
        ladder = [d for d in ladder if d[2] != "w"]
        scale = 2560 / longest
        ladder.append((round(width * scale), round(height * scale), "w"))
    return ladder
