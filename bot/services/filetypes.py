"""What a patient's upload really is, decided from its bytes alone.

The file name and the MIME type a Telegram client claims are never looked at: the API takes
only the bytes (or a path whose name is ignored). Besides the kind, the check refuses files
that are empty or visibly cut short, so a patient can be asked to send them again at once
instead of a doctor finding a broken attachment days later. Nothing is decoded, decompressed
or extracted: only signatures and container structure (segment, chunk, box, sector and
element headers) are read, so a check costs milliseconds.

Decisions (the brief left these open):

* EMPTY is a file of zero bytes or of nothing but ASCII whitespace and NULs, and also a ZIP
  archive with no entries at all (a bare end-of-central-directory record, ``PK\\x05\\x06``):
  "the file is empty" is the right thing to tell the patient about it.
* JPEG must have a frame header (SOFn) before its first scan (SOS). It is complete when it
  ends, after trailing NUL padding, with the EOI marker. Phones append data after EOI
  (Google/Samsung "motion photos" carry an MP4 there, Samsung adds SEF trailers), so when the
  file does not end with EOI the entropy-coded data is scanned for the image's own EOI; only
  when there is none is the file TRUNCATED. An embedded EXIF thumbnail's EOI is never taken for
  the image's, as segments are skipped by their declared length.
* PNG must start with its IHDR chunk; it is complete when it ends (after NUL padding) with the
  IEND chunk, or, for files with data after IEND, when walking the chunk chain reaches IEND.
* HEIC: the ``ftyp`` brands decide. Any HEVC brand (heic heix hevc hevx heim heis hevm hevs)
  makes it HEIC; AVIF (avif avis avio) is NOT accepted even though AVIF files list ``mif1``
  too: it is AV1, not HEVC, and storing it as ``.heic`` would mislabel it; add a kind if AVIF
  is ever wanted. A file whose brands are only the generic HEIF ones (mif1 msf1 mif2 miaf) is
  accepted as HEIC (an HEIF still image or sequence). Other ISO-BMFF files (MP4, MOV, 3GP,
  Canon CR3, ...) are UNSUPPORTED. TRUNCATED when a top-level box runs past the end of the data,
  or when there is neither a ``meta`` nor a ``moov`` box (an HEIF image cannot be read without
  it; in practice this is a file cut right after ``ftyp``).
* PDF: ``%PDF-`` within the first 1024 bytes (as readers allow), TRUNCATED when ``%%EOF`` is
  not within the last 2048 bytes once trailing NULs and whitespace are ignored. A file that
  starts like an executable is never taken for a PDF even when it contains ``%PDF-`` further on.
* DOC: an OLE2 compound file (version 3 with 512-byte or version 4 with 4096-byte sectors)
  whose directory holds a ``WordDocument`` stream. TRUNCATED when the 512-byte header is
  incomplete, or when the FAT marks sectors as used that lie past the end of the file (only
  the last used sector may be short: some writers end the file inside it). Other OLE2 files
  (XLS, PPT, MSG, MSI, and password-protected DOCX/XLSX, which Office stores as an OLE2
  ``EncryptedPackage``) are UNSUPPORTED.
* ZIP must start with a local file header (``PK\\x03\\x04``). TRUNCATED when there is no
  end-of-central-directory record at the end of the file (data after it may only be NULs), so a
  nested archive's record inside a cut file is not mistaken for the outer one. The member list
  comes from the stdlib ``zipfile`` (central directory only, nothing is extracted); an archive
  it cannot read is UNSUPPORTED. A ZIP holding ``[Content_Types].xml`` and ``word/document.xml``
  is DOCX, unless it holds ``word/vbaProject.bin`` (a macro-enabled DOCM: UNSUPPORTED). Other
  OOXML (XLSX, PPTX), OpenDocument and EPUB files (a ``mimetype`` member) and Java/Android
  packages are UNSUPPORTED rather than accepted as plain ZIP: they would be stored and shown to
  the doctor as ``.zip``, which they are not. What an ordinary archive contains is not judged.
* DICOM needs the 128-byte preamble and ``DICM`` at offset 128; raw DICOM without a preamble
  is UNSUPPORTED (rare in what patients get on a CD, and without a magic number any guess
  would accept random data). A preamble that starts like an executable is refused: PE/DICOM
  polyglots (CVE-2019-11687) hide malware exactly there. The file meta group and the data set
  are walked element by element (explicit or implicit VR, either byte order, sequences and
  encapsulated pixel data of undefined length); the file is TRUNCATED only when an element's
  value runs past the end of the data. Anything the walk does not understand (a deflated
  data set, a non-conforming encoding) is given the benefit of the doubt: it is still DICOM.
* Everything else is UNSUPPORTED, including data too short to hold a whole signature, unless
  it is the beginning of one of the signatures above (then it is TRUNCATED).

``ACCEPTED`` holds every kind: a kind is only listed here because the bot accepts it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Final, Literal

from bot.logging_setup import safe_exc_info

__all__ = [
    "ACCEPTED",
    "Detection",
    "FileKind",
    "Problem",
    "detect",
    "detect_path",
    "extension_for",
    "mime_for",
]

_log = logging.getLogger(__name__)


class FileKind(StrEnum):
    """A file type the bot recognises (and accepts)."""

    JPEG = "jpeg"
    PNG = "png"
    HEIC = "heic"  # HEIC and other HEVC-coded HEIF; not AVIF
    PDF = "pdf"
    DOC = "doc"  # OLE2 Word 97-2003 document
    DOCX = "docx"
    ZIP = "zip"
    DICOM = "dicom"


class Problem(StrEnum):
    """Why a file is refused."""

    EMPTY = "empty"
    TRUNCATED = "truncated"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Detection:
    """The outcome of a check: exactly one of ``kind`` and ``problem`` is set."""

    kind: FileKind | None = None
    problem: Problem | None = None

    def __post_init__(self) -> None:
        if (self.kind is None) == (self.problem is None):
            raise ValueError("exactly one of kind and problem must be set")

    @property
    def ok(self) -> bool:
        """True when the file was recognised (``kind`` is set)."""
        return self.kind is not None


ACCEPTED: Final[frozenset[FileKind]] = frozenset(FileKind)

_EXTENSIONS: Final[dict[FileKind, str]] = {
    FileKind.JPEG: ".jpg",
    FileKind.PNG: ".png",
    FileKind.HEIC: ".heic",
    FileKind.PDF: ".pdf",
    FileKind.DOC: ".doc",
    FileKind.DOCX: ".docx",
    FileKind.ZIP: ".zip",
    FileKind.DICOM: ".dcm",
}

_MIME_TYPES: Final[dict[FileKind, str]] = {
    FileKind.JPEG: "image/jpeg",
    FileKind.PNG: "image/png",
    FileKind.HEIC: "image/heic",
    FileKind.PDF: "application/pdf",
    FileKind.DOC: "application/msword",
    FileKind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.ZIP: "application/zip",
    FileKind.DICOM: "application/dicom",
}


def extension_for(kind: FileKind) -> str:
    """The file extension to store a file of this kind under, with the dot (".jpg")."""
    return _EXTENSIONS[kind]


def mime_for(kind: FileKind) -> str:
    """The MIME type to send a file of this kind with."""
    return _MIME_TYPES[kind]


def detect(data: bytes) -> Detection:
    """Decide what ``data`` is. Never raises on any input."""
    return _detect(_BytesSource(data))


def detect_path(path: Path) -> Detection:
    """Like :func:`detect` for a file on disk; the name of the file plays no part.

    Only the parts the check needs are read (the head, the tail, the headers of the
    container's parts, for a ZIP its central directory); no byte is read twice from disk
    except within small cached windows. Errors opening or reading the file (missing file,
    a directory, permissions) are raised as ``OSError``: they say nothing about the content.
    """
    with path.open("rb") as fh:
        size = fh.seek(0, io.SEEK_END)
        return _detect(_FileSource(fh, size))


# --------------------------------------------------------------------------- results

_EMPTY: Final = Detection(problem=Problem.EMPTY)
_TRUNCATED: Final = Detection(problem=Problem.TRUNCATED)
_UNSUPPORTED: Final = Detection(problem=Problem.UNSUPPORTED)
_FOUND: Final[dict[FileKind, Detection]] = {kind: Detection(kind=kind) for kind in FileKind}


class _TruncatedError(Exception):
    """The data ends before the structure it started says it should."""


class _MalformedError(Exception):
    """The structure makes no sense."""


# --------------------------------------------------------------------------- byte sources


class _Source:
    """Random access to the bytes being checked: in memory or in a file."""

    size: int

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; fewer (or none) at the end of the data."""
        raise NotImplementedError


class _BytesSource(_Source):
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data).cast("B")
        self.size = len(self._view)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        return bytes(self._view[offset : offset + length])


_HEAD_CACHE: Final = 1 << 16
_TAIL_CACHE: Final = (1 << 16) + (1 << 15)  # a ZIP's end record plus the longest comment
_WINDOW: Final = 1 << 16


class _FileSource(_Source):
    """Reads a file lazily, keeping its head, its tail and one sliding window in memory."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh = fh
        self.size = size
        self._head = self._raw(0, min(size, _HEAD_CACHE))
        self._tail_start = max(0, size - _TAIL_CACHE)
        self._tail: bytes | None = None
        self._window_start = 0
        self._window = b""

    def _raw(self, offset: int, length: int) -> bytes:
        self._fh.seek(offset)
        return self._fh.read(length)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        end = min(offset + length, self.size)
        if end <= len(self._head):
            return self._head[offset:end]
        if offset >= self._tail_start:
            if self._tail is None:
                self._tail = self._raw(self._tail_start, self.size - self._tail_start)
            return self._tail[offset - self._tail_start : end - self._tail_start]
        window_end = self._window_start + len(self._window)
        if self._window_start <= offset and end <= window_end:
            return self._window[offset - self._window_start : end - self._window_start]
        if end - offset <= _WINDOW // 4:  # many small header reads: keep a window around them
            self._window_start = offset
            self._window = self._raw(offset, _WINDOW)
            return self._window[: end - offset]
        return self._raw(offset, end - offset)


class _SourceReader(io.BufferedIOBase):
    """A read-only file object over a source, for ``zipfile``.

    It behaves the same for both kinds of source (a negative seek is a ``ValueError``, as
    with ``io.BytesIO``), so that ``detect`` and ``detect_path`` agree on broken archives.
    """

    def __init__(self, src: _Source) -> None:
        super().__init__()
        self._src = src
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if whence == io.SEEK_SET:
            base = 0
        elif whence == io.SEEK_CUR:
            base = self._pos
        elif whence == io.SEEK_END:
            base = self._src.size
        else:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            size = self._src.size - self._pos
        data = self._src.read(self._pos, size)
        self._pos += len(data)
        return data

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(size)


_SCAN_CHUNK_MIN: Final = 512
_SCAN_CHUNK_MAX: Final = 1 << 20


def _find(src: _Source, pattern: re.Pattern[bytes], start: int) -> int:
    """Offset of the first match of a two-byte ``pattern`` at or after ``start``, or -1.

    Reads in chunks that start small (the match is usually close) and grow, so a long search
    through a large file reads it once.
    """
    pos, chunk = start, _SCAN_CHUNK_MIN
    while pos < src.size:
        block = src.read(pos, chunk)
        if not block:
            return -1
        found = pattern.search(block)
        if found is not None:
            return pos + found.start()
        if pos + len(block) >= src.size:
            return -1
        pos += max(1, len(block) - 1)  # the two bytes of a match may straddle two chunks
        chunk = min(chunk * 2, _SCAN_CHUNK_MAX)
    return -1


def _content_end(src: _Source, padding: bytes) -> int:
    """The length of the data once trailing bytes from ``padding`` are dropped."""
    end, chunk = src.size, 4096
    while end > 0:
        start = max(0, end - chunk)
        block = src.read(start, end - start)
        if len(block) != end - start:  # the file shrank under us: treat it as ending here
            return end
        kept = block.rstrip(padding)
        if kept:
            return start + len(kept)
        end = start
        chunk = min(chunk * 2, _SCAN_CHUNK_MAX)
    return 0


_BLANK: Final = b" \t\n\r\x0b\x0c\x00"


def _is_blank(src: _Source) -> bool:
    pos, chunk = 0, 4096
    while pos < src.size:
        block = src.read(pos, chunk)
        if not block:
            break
        if block.lstrip(_BLANK):
            return False
        pos += len(block)
        chunk = min(chunk * 2, _SCAN_CHUNK_MAX)
    return True


_ByteOrder = Literal["little", "big"]


def _u16(raw: bytes, at: int, order: _ByteOrder = "little") -> int:
    return int.from_bytes(raw[at : at + 2], order)


def _u32(raw: bytes, at: int, order: _ByteOrder = "little") -> int:
    return int.from_bytes(raw[at : at + 4], order)


# --------------------------------------------------------------------------- dispatch

_SNIFF: Final = 2048
_JPEG_SIGNATURE: Final = b"\xff\xd8\xff"
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_OLE2_SIGNATURE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_LOCAL_HEADER: Final = b"PK\x03\x04"
_ZIP_END_RECORD: Final = b"PK\x05\x06"
_PDF_HEADER: Final = b"%PDF-"
_PDF_HEADER_WITHIN: Final = 1024
_DICOM_MAGIC_AT: Final = 128
_EXECUTABLE_PREFIXES: Final = (
    b"MZ",  # DOS/Windows PE
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both word sizes and byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary (and Java class files)
    b"#!",  # scripts
)
_SIGNATURES: Final = (
    _JPEG_SIGNATURE,
    _PNG_SIGNATURE,
    _OLE2_SIGNATURE,
    _ZIP_LOCAL_HEADER,
    _ZIP_END_RECORD,
    _PDF_HEADER,
)


def _detect(src: _Source) -> Detection:
    try:
        return _classify(src)
    except _TruncatedError:
        return _TRUNCATED
    except _MalformedError:
        return _UNSUPPORTED
    except OSError:
        raise  # reading the file failed: not a property of its content
    except Exception as exc:  # noqa: BLE001
        # A bug of ours must not turn an upload into a crash; it is logged to be fixed (a
        # decoder's message could quote the file's bytes: the frames only then).
        _log.error("file type detection failed on %d bytes", src.size, exc_info=safe_exc_info(exc))
        return _UNSUPPORTED


def _classify(src: _Source) -> Detection:
    if src.size == 0:
        return _EMPTY
    head = src.read(0, _SNIFF)
    if head.startswith(_JPEG_SIGNATURE):
        return _check_jpeg(src)
    if head.startswith(_PNG_SIGNATURE):
        return _check_png(src)
    if head.startswith(_OLE2_SIGNATURE):
        return _check_ole2(src)
    if head.startswith(_ZIP_LOCAL_HEADER):
        return _check_zip(src)
    if head.startswith(_ZIP_END_RECORD):
        return _check_empty_zip(src)
    if head.startswith(_EXECUTABLE_PREFIXES):
        return _UNSUPPORTED
    if head[4:8] == b"ftyp":
        return _check_heif(src)
    if head[_DICOM_MAGIC_AT : _DICOM_MAGIC_AT + 4] == b"DICM":
        return _check_dicom(src)
    pdf_at = head.find(_PDF_HEADER, 0, _PDF_HEADER_WITHIN - 1 + len(_PDF_HEADER))
    if pdf_at >= 0:
        return _check_pdf(src)
    if len(head) >= 2 and any(len(head) < len(sig) and sig.startswith(head) for sig in _SIGNATURES):
        return _TRUNCATED
    if _is_blank(src):
        return _EMPTY
    return _UNSUPPORTED


# --------------------------------------------------------------------------- JPEG

_JPEG_ANY_MARKER: Final = re.compile(rb"\xff[^\x00\xff]")
_JPEG_SCAN_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # RSTn live inside scans
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_FRAME: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_JPEG_SOI: Final = 0xD8
_JPEG_EOI: Final = 0xD9
_JPEG_SOS: Final = 0xDA
_JPEG_MAX_SEGMENTS: Final = 1 << 16


def _jpeg_next_marker(src: _Source, pos: int, pattern: re.Pattern[bytes]) -> tuple[int, int]:
    """The next marker at or after ``pos`` (fill bytes and stray data skipped, as libjpeg
    does) and the offset just after it."""
    at = _find(src, pattern, pos)
    if at < 0:
        raise _TruncatedError
    return src.read(at + 1, 1)[0], at + 2


def _jpeg_skip_segment(src: _Source, pos: int) -> int:
    raw = src.read(pos, 2)
    if len(raw) < 2:
        raise _TruncatedError
    length = _u16(raw, 0, "big")
    if length < 2:
        raise _MalformedError
    if pos + length > src.size:
        raise _TruncatedError
    return pos + length


def _check_jpeg(src: _Source) -> Detection:
    pos, has_frame = 2, False
    for _ in range(_JPEG_MAX_SEGMENTS):
        marker, pos = _jpeg_next_marker(src, pos, _JPEG_ANY_MARKER)
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (_JPEG_SOI, _JPEG_EOI):
            raise _MalformedError  # nested SOI, or an end without any image
        pos = _jpeg_skip_segment(src, pos)
        if marker in _JPEG_FRAME:
            has_frame = True
        elif marker == _JPEG_SOS:
            break
    else:
        raise _MalformedError
    if not has_frame:
        raise _MalformedError
    end = _content_end(src, b"\x00")
    if end - 2 >= pos and src.read(end - 2, 2) == b"\xff\xd9":
        return _FOUND[FileKind.JPEG]
    # No EOI at the end: either the file is cut, or data follows the image (motion photos).
    # A garbled end where the EOI should be (_MalformedError) also means the file is not whole.
    with contextlib.suppress(_MalformedError):
        for _ in range(_JPEG_MAX_SEGMENTS):
            marker, pos = _jpeg_next_marker(src, pos, _JPEG_SCAN_MARKER)
            if marker == _JPEG_EOI:
                return _FOUND[FileKind.JPEG]
            if marker in _JPEG_STANDALONE:
                continue
            if marker == _JPEG_SOI:
                raise _MalformedError
            pos = _jpeg_skip_segment(src, pos)  # DHT, DQT, DRI or the next SOS of a progressive
    raise _TruncatedError


# --------------------------------------------------------------------------- PNG

_PNG_IHDR: Final = b"\x00\x00\x00\x0dIHDR"
_PNG_IEND: Final = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PNG_MAX_CHUNKS: Final = 1 << 17


def _check_png(src: _Source) -> Detection:
    if src.size < 8 + 25 + 12:  # signature, IHDR, IEND
        raise _TruncatedError
    if src.read(8, 8) != _PNG_IHDR:
        raise _MalformedError
    end = _content_end(src, b"\x00")
    if end >= 8 + 25 + 12 and src.read(end - 12, 12) == _PNG_IEND:
        return _FOUND[FileKind.PNG]
    # Walk the chunks: IEND may be followed by foreign data, or be missing.
    pos = 8
    for _ in range(_PNG_MAX_CHUNKS):
        header = src.read(pos, 8)
        if len(header) < 8:
            raise _TruncatedError
        length, chunk_type = _u32(header, 0, "big"), header[4:8]
        if not chunk_type.isalpha() or length > 0x7FFFFFFF:
            raise _TruncatedError  # garbage (often NUL fill) where the next chunk should be
        pos += 12 + length
        if pos > src.size:
            raise _TruncatedError
        if chunk_type == b"IEND":
            return _FOUND[FileKind.PNG]
    raise _MalformedError


# --------------------------------------------------------------------------- HEIC / HEIF

_HEVC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
)
_HEIF_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis", b"avio"})
_FTYP_MAX: Final = 4096
_BMFF_MAX_BOXES: Final = 4096


def _check_heif(src: _Source) -> Detection:
    header = src.read(0, 8)
    ftyp_size = _u32(header, 0, "big")
    if ftyp_size < 16 or ftyp_size > _FTYP_MAX:
        raise _MalformedError
    if ftyp_size > src.size:
        raise _TruncatedError
    ftyp = src.read(0, ftyp_size)
    brands = {ftyp[8:12]} | {ftyp[at : at + 4] for at in range(16, ftyp_size - 3, 4)}
    if brands.isdisjoint(_HEVC_BRANDS) and (
        not brands.isdisjoint(_AVIF_BRANDS) or brands.isdisjoint(_HEIF_GENERIC_BRANDS)
    ):
        return _UNSUPPORTED  # AVIF, MP4, MOV, 3GP, CR3, ...
    seen: set[bytes] = set()
    pos = 0
    for _ in range(_BMFF_MAX_BOXES):
        left = src.size - pos
        if left == 0:
            break
        if left < 8:
            if src.read(pos, left).strip(b"\x00"):
                raise _TruncatedError
            break  # NUL padding
        box = src.read(pos, 16)
        size, box_type = _u32(box, 0, "big"), box[4:8]
        header_size = 8
        if size == 1:  # 64-bit size follows the type
            if len(box) < 16:
                raise _TruncatedError
            size, header_size = int.from_bytes(box[8:16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            seen.add(box_type)
            break
        if size < header_size:
            raise _MalformedError
        if pos + size > src.size:
            raise _TruncatedError
        seen.add(box_type)
        pos += size
    else:
        raise _MalformedError
    if b"meta" not in seen and b"moov" not in seen:
        raise _TruncatedError
    return _FOUND[FileKind.HEIC]


# --------------------------------------------------------------------------- PDF

_PDF_EOF: Final = b"%%EOF"
_PDF_EOF_WITHIN: Final = 2048


def _check_pdf(src: _Source) -> Detection:
    end = _content_end(src, _BLANK)
    start = max(0, end - _PDF_EOF_WITHIN)
    if _PDF_EOF in src.read(start, end - start):
        return _FOUND[FileKind.PDF]
    raise _TruncatedError


# --------------------------------------------------------------------------- DOC (OLE2)

_OLE_MAX_REGULAR: Final = 0xFFFFFFFA
_OLE_END_OF_CHAIN: Final = 0xFFFFFFFE
_OLE_HEADER_FAT_IDS: Final = 109
_OLE_DIR_ENTRY: Final = 128
_OLE_STREAM: Final = 2


def _ole_sector(src: _Source, sector: int, sector_size: int, sectors: int) -> bytes:
    if sector > _OLE_MAX_REGULAR:
        raise _MalformedError  # a chain ends (or is free) where a sector is needed
    if sector >= sectors:
        raise _TruncatedError
    data = src.read((sector + 1) * sector_size, sector_size)
    if len(data) < sector_size:
        raise _TruncatedError
    return data


def _u32_list(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[at : at + 4], "little") for at in range(0, len(raw) - 3, 4)]


def _check_ole2(src: _Source) -> Detection:
    header = src.read(0, 512)
    if len(header) < 512:
        raise _TruncatedError
    major, byte_order, shift = _u16(header, 26), _u16(header, 28), _u16(header, 30)
    if byte_order != 0xFFFE or (major, shift) not in {(3, 9), (4, 12)}:
        raise _MalformedError
    sector_size = 1 << shift
    if src.size < sector_size:
        raise _TruncatedError  # version 4: the header sector itself is incomplete
    # Sectors present after the header sector, counting a short last one.
    sectors = -(-(src.size - sector_size) // sector_size)
    fat_count, first_dir = _u32(header, 44), _u32(header, 48)
    next_difat = _u32(header, 68)
    if fat_count == 0:
        raise _MalformedError
    if fat_count > sectors:
        raise _TruncatedError

    fat_sectors = _u32_list(header[76:512])[: min(fat_count, _OLE_HEADER_FAT_IDS)]
    per_difat = sector_size // 4 - 1
    visited: set[int] = set()
    while len(fat_sectors) < fat_count:
        if next_difat in visited:
            raise _MalformedError
        visited.add(next_difat)
        ids = _u32_list(_ole_sector(src, next_difat, sector_size, sectors))
        fat_sectors += ids[:per_difat]
        next_difat = ids[per_difat]
    fat_raw = b"".join(
        _ole_sector(src, sector, sector_size, sectors) for sector in fat_sectors[:fat_count]
    )
    # The highest sector the FAT marks as used (anything but FREESECT, 0xFFFFFFFF).
    last_used = (len(fat_raw.rstrip(b"\xff")) + 3) // 4 - 1
    if last_used >= sectors:
        raise _TruncatedError
    fat = _u32_list(fat_raw)

    sector, visited = first_dir, set()
    while sector != _OLE_END_OF_CHAIN:
        if sector in visited or sector >= len(fat):
            raise _MalformedError
        visited.add(sector)
        block = _ole_sector(src, sector, sector_size, sectors)
        for at in range(0, sector_size, _OLE_DIR_ENTRY):
            if _is_word_document_entry(block[at : at + _OLE_DIR_ENTRY]):
                return _FOUND[FileKind.DOC]
        sector = fat[sector]
    return _UNSUPPORTED  # XLS, PPT, MSG, MSI, encrypted OOXML, ...


def _is_word_document_entry(entry: bytes) -> bool:
    name_length = _u16(entry, 64)  # in bytes, with the terminating NUL character
    if entry[66] != _OLE_STREAM or not 2 <= name_length <= 64 or name_length % 2:
        return False
    name = entry[: name_length - 2].decode("utf-16-le", errors="replace")
    return name.casefold() == "worddocument"


# --------------------------------------------------------------------------- ZIP / DOCX

_ZIP_END_SIZE: Final = 22
_ZIP_MAX_COMMENT: Final = 0xFFFF
_ZIP_DIR_HEADER: Final = b"PK\x01\x02"


def _zip_end_record(src: _Source) -> int:
    """Offset of the end-of-central-directory record that closes the file, or -1."""
    start = max(0, src.size - _ZIP_END_SIZE - _ZIP_MAX_COMMENT - 4096)
    tail = src.read(start, src.size - start)
    at = len(tail)
    while True:
        at = tail.rfind(_ZIP_END_RECORD, 0, at)
        if at < 0:
            return -1
        record_end = at + _ZIP_END_SIZE + _u16(tail, at + 20)
        if record_end <= len(tail) and not tail[record_end:].strip(b"\x00"):
            return start + at


def _check_empty_zip(src: _Source) -> Detection:
    """A file starting with an end-of-central-directory record: an archive with no entries."""
    record = src.read(0, _ZIP_END_SIZE)
    if len(record) < _ZIP_END_SIZE:
        raise _TruncatedError
    if _u16(record, 10) or _u32(record, 12) or _u32(record, 16):
        raise _MalformedError  # claims entries, but there is nowhere for them to be
    if _ZIP_END_SIZE + _u16(record, 20) > src.size:
        raise _TruncatedError
    return _EMPTY


def _check_zip(src: _Source) -> Detection:
    end_at = _zip_end_record(src)
    if end_at < 0:
        raise _TruncatedError
    record = src.read(end_at, _ZIP_END_SIZE)
    disk, dir_disk, entries = _u16(record, 4), _u16(record, 6), _u16(record, 10)
    dir_size, dir_offset = _u32(record, 12), _u32(record, 16)
    if disk != dir_disk and 0xFFFF not in (disk, dir_disk):
        raise _MalformedError  # a split (multi-volume) archive: only one part of it
    zip64 = 0xFFFF in (disk, dir_disk, entries) or 0xFFFFFFFF in (dir_size, dir_offset)
    if not zip64:
        if disk != 0 or entries == 0 or dir_offset + dir_size > end_at:
            raise _MalformedError
        if src.read(dir_offset, 4) != _ZIP_DIR_HEADER:
            raise _MalformedError
    try:
        with zipfile.ZipFile(_SourceReader(src)) as archive:
            names = archive.namelist()
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - zipfile on hostile input: BadZipFile, ValueError, struct.error, ...
        return _UNSUPPORTED
    if not names:
        raise _MalformedError
    return _classify_archive(names)


_NON_ZIP_MEMBERS: Final = frozenset(
    {
        "[content_types].xml",  # OOXML other than Word: XLSX, PPTX, ...
        "androidmanifest.xml",  # Android package
        "classes.dex",
        "meta-inf/manifest.mf",  # Java archive
    }
)


def _classify_archive(names: list[str]) -> Detection:
    lowered = {name.casefold() for name in names}
    if "word/document.xml" in lowered and "[content_types].xml" in lowered:
        if "word/vbaproject.bin" in lowered:
            return _UNSUPPORTED  # macro-enabled (DOCM)
        return _FOUND[FileKind.DOCX]
    if names[0] == "mimetype" or not lowered.isdisjoint(_NON_ZIP_MEMBERS):
        return _UNSUPPORTED  # OpenDocument, EPUB, OOXML, APK, JAR
    return _FOUND[FileKind.ZIP]


# --------------------------------------------------------------------------- DICOM

_DICOM_VRS: Final = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN"
    b" UR US UT UV".split()
)
_DICOM_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_DICOM_IMPLICIT_LE: Final = b"1.2.840.10008.1.2"
_DICOM_EXPLICIT_BE: Final = b"1.2.840.10008.1.2.2"
_DICOM_DEFLATED: Final = frozenset({b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.4.95"})
_DICOM_UNDEFINED: Final = 0xFFFFFFFF
_DICOM_DELIMITER_GROUP: Final = 0xFFFE
_DICOM_ITEM: Final = 0xE000
_DICOM_ITEM_END: Final = 0xE00D
_DICOM_SEQUENCE_END: Final = 0xE0DD
_DICOM_MAX_DEPTH: Final = 32
_DICOM_MAX_ELEMENTS: Final = 200_000


@dataclass(slots=True)
class _DicomElement:
    group: int
    element: int
    vr: bytes
    length: int
    header: int


class _DicomWalk:
    """Walks a DICOM data set by element headers, raising ``_TruncatedError`` when a value
    runs past the end and ``_MalformedError`` when the encoding is not understood."""

    def __init__(self, src: _Source, *, little: bool) -> None:
        self._src = src
        self._order: _ByteOrder = "little" if little else "big"
        self._budget = _DICOM_MAX_ELEMENTS

    def header(self, pos: int, *, explicit: bool) -> _DicomElement:
        self._budget -= 1
        if self._budget < 0:
            raise _MalformedError  # not worth walking further; the caller gives up
        raw = self._src.read(pos, 12)
        if len(raw) < 8:
            raise _TruncatedError
        group, element = _u16(raw, 0, self._order), _u16(raw, 2, self._order)
        if group == _DICOM_DELIMITER_GROUP or not explicit:
            return _DicomElement(group, element, b"", _u32(raw, 4, self._order), 8)
        vr = raw[4:6]
        if not (vr.isalpha() and vr.isupper()):
            raise _MalformedError
        if vr in _DICOM_LONG_VRS:
            if len(raw) < 12:
                raise _TruncatedError
            return _DicomElement(group, element, vr, _u32(raw, 8, self._order), 12)
        return _DicomElement(group, element, vr, _u16(raw, 6, self._order), 8)

    def data_set(self, pos: int, end: int | None, *, explicit: bool, depth: int) -> int:
        """Walk elements from ``pos`` up to ``end``, or (``end`` None, an item of undefined
        length) up to the item delimiter; return the offset after them."""
        while True:
            if end is not None:
                if pos >= end:
                    if pos > end:
                        raise _MalformedError
                    return pos
                if depth == 0 and end - pos < 8 and not self._src.read(pos, 8).strip(b"\x00"):
                    return end  # NUL padding at the end of the file
            item = self.header(pos, explicit=explicit)
            pos += item.header
            if item.group == _DICOM_DELIMITER_GROUP:
                if item.element == _DICOM_ITEM_END and end is None:
                    return pos
                raise _MalformedError
            if item.length == _DICOM_UNDEFINED:
                # A sequence, UN of unknown length (implicit VR inside), or encapsulated pixels.
                pos = self.items(pos, explicit=explicit and item.vr != b"UN", depth=depth + 1)
            else:
                pos += item.length
                if pos > self._src.size:
                    raise _TruncatedError

    def items(self, pos: int, *, explicit: bool, depth: int) -> int:
        """Walk the items of a value of undefined length up to its sequence delimiter."""
        if depth > _DICOM_MAX_DEPTH:
            raise _MalformedError
        while True:
            item = self.header(pos, explicit=explicit)
            pos += item.header
            if item.group != _DICOM_DELIMITER_GROUP:
                raise _MalformedError
            if item.element == _DICOM_SEQUENCE_END:
                return pos
            if item.element != _DICOM_ITEM:
                raise _MalformedError
            if item.length == _DICOM_UNDEFINED:
                pos = self.data_set(pos, None, explicit=explicit, depth=depth)
            else:
                pos += item.length
                if pos > self._src.size:
                    raise _TruncatedError


def _check_dicom(src: _Source) -> Detection:
    found = _FOUND[FileKind.DICOM]
    # The file meta group (0002,xxxx) always uses explicit VR little endian.
    meta = _DicomWalk(src, little=True)
    pos, syntax = _DICOM_MAGIC_AT + 4, b""
    try:
        while True:
            peek = src.read(pos, 2)
            if len(peek) == 2 and _u16(peek, 0) != 2:
                break
            element = meta.header(pos, explicit=True)  # raises _TruncatedError at the end
            value_at = pos + element.header
            pos = value_at + element.length
            if element.length == _DICOM_UNDEFINED:
                raise _MalformedError
            if pos > src.size:
                raise _TruncatedError
            if element.element == 0x0010:
                syntax = src.read(value_at, min(element.length, 64)).rstrip(b"\x00 ")
            if pos == src.size:
                return found  # only a meta group: odd, but nothing is cut
        if syntax in _DICOM_DEFLATED:
            return found  # the data set is compressed as a whole: nothing to walk
        little = syntax != _DICOM_EXPLICIT_BE
        explicit = syntax != _DICOM_IMPLICIT_LE
        first = src.read(pos, 8)
        if len(first) == 8 and _u16(first, 0, "little" if little else "big") != 0xFFFE:
            # Some writers encode the data set otherwise than the transfer syntax says:
            # trust what the first element looks like, as DICOM toolkits do.
            explicit = first[4:6] in _DICOM_VRS
        walk = _DicomWalk(src, little=little)
        walk.data_set(pos, src.size, explicit=explicit, depth=0)
    except _MalformedError:
        return found  # not understood is not the same as cut: give the benefit of the doubt
    return found
