"""Tests for bot.services.filetypes: kinds from bytes, and empty or cut files refused.

Every sample is built here, byte by byte, so the tests need no fixture files.
"""

from __future__ import annotations

import io
import logging
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.services import filetypes
from bot.services.filetypes import (
    ACCEPTED,
    Detection,
    FileKind,
    Problem,
    detect,
    detect_path,
    extension_for,
    mime_for,
)

# --------------------------------------------------------------------------- sample builders


def _noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def make_png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + _noise(3 * width, seed=y) for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _entropy_data(size: int, seed: int) -> bytes:
    """Scan data as an encoder writes it: every 0xFF stuffed with 0x00, a restart marker."""
    raw = _noise(size, seed).replace(b"\xff", b"\xff\x00")
    return raw[: size // 2] + b"\xff\xd0" + raw[size // 2 :]


def make_jpeg(*, app1: bytes = b"", scan_size: int = 600) -> bytes:
    return (
        b"\xff\xd8"
        + _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + app1
        + _jpeg_segment(0xDB, b"\x00" + bytes(range(1, 65)))
        + _jpeg_segment(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")
        + _jpeg_segment(0xDD, b"\x00\x04")  # restart interval
        + _jpeg_segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
        + _jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + _entropy_data(scan_size, seed=7)
        + b"\xff\xd9"
    )


def make_progressive_jpeg() -> bytes:
    """Two scans with a Huffman table between them, as progressive encoders write."""
    sos = _jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    dht = _jpeg_segment(0xC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00")
    return (
        b"\xff\xd8"
        + _jpeg_segment(0xC2, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")
        + _jpeg_segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
        + sos
        + _entropy_data(300, seed=1)
        + dht
        + sos
        + _entropy_data(300, seed=2)
        + b"\xff\xd9"
    )


def make_pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length 35 >>\nstream\nBT /F1 12 Tf 20 100 Td (Hi) Tj ET\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def make_zip(members: dict[str, bytes], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        archive.comment = comment
    return buffer.getvalue()


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
    b"</Types>"
)


def make_docx() -> bytes:
    return make_zip(
        {
            "[Content_Types].xml": _CONTENT_TYPES,
            "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
            "word/document.xml": b'<?xml version="1.0"?><w:document><w:body/></w:document>'
            + _noise(3000, seed=3).hex().encode(),
        }
    )


def make_plain_zip() -> bytes:
    return make_zip(
        {
            "study/DICOMDIR": _noise(500, seed=4),
            "study/IM000001": _noise(4000, seed=5),  # random: does not compress
        }
    )


def make_heic(brands: tuple[bytes, ...] = (b"heic", b"mif1", b"heic")) -> bytes:
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    major, *compatible = brands
    ftyp = box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))
    hdlr = box(b"hdlr", b"\x00" * 4 + b"\x00" * 4 + b"pict" + b"\x00" * 12 + b"\x00")
    meta = box(b"meta", b"\x00\x00\x00\x00" + hdlr)
    mdat = box(b"mdat", _noise(2000, seed=6))
    return ftyp + meta + mdat


def _dicom_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """Explicit VR little endian."""
    if vr in {b"OB", b"OW", b"SQ", b"UN", b"UT"}:
        return struct.pack("<HH2s2xI", group, element, vr, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _implicit_element(group: int, element: int, value: bytes, length: int | None = None) -> bytes:
    size = len(value) if length is None else length
    return struct.pack("<HHI", group, element, size) + value


def _dicom_file(syntax: bytes, data_set: bytes) -> bytes:
    syntax += b"\x00" * (len(syntax) % 2)
    meta_body = _dicom_element(2, 0x0001, b"OB", b"\x00\x01") + _dicom_element(
        2, 0x0010, b"UI", syntax
    )
    meta = _dicom_element(2, 0x0000, b"UL", struct.pack("<I", len(meta_body))) + meta_body
    return b"\x00" * 128 + b"DICM" + meta + data_set


def make_dicom() -> bytes:
    data_set = (
        _dicom_element(0x0010, 0x0010, b"PN", b"Doe^Jane")
        + _dicom_element(0x0028, 0x0010, b"US", struct.pack("<H", 16))
        + _dicom_element(0x0028, 0x0011, b"US", struct.pack("<H", 16))
        + _dicom_element(0x7FE0, 0x0010, b"OW", _noise(512, seed=8))
    )
    return _dicom_file(b"1.2.840.10008.1.2.1", data_set)


_UNDEFINED = 0xFFFFFFFF


def make_implicit_dicom_with_sequence() -> bytes:
    """Implicit VR, with a sequence and an item both of undefined length."""
    item = _implicit_element(0x0008, 0x1150, b"1.2.3.4\x00") + struct.pack(
        "<HHI", 0xFFFE, 0xE00D, 0
    )
    sequence = (
        _implicit_element(0x0008, 0x1140, b"", length=_UNDEFINED)
        + struct.pack("<HHI", 0xFFFE, 0xE000, _UNDEFINED)
        + item
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    data_set = (
        _implicit_element(0x0010, 0x0010, b"Doe^Jane")
        + sequence
        + _implicit_element(0x7FE0, 0x0010, _noise(512, seed=9))
    )
    return _dicom_file(b"1.2.840.10008.1.2", data_set)


def make_encapsulated_dicom() -> bytes:
    """Explicit VR with JPEG-compressed pixel data: fragments of an undefined-length value."""
    fragments = (
        struct.pack("<HHI", 0xFFFE, 0xE000, 0)  # empty basic offset table
        + struct.pack("<HHI", 0xFFFE, 0xE000, 600)
        + _noise(600, seed=10)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    pixels = struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OB", _UNDEFINED) + fragments
    data_set = _dicom_element(0x0010, 0x0010, b"PN", b"Doe^Jane") + pixels
    return _dicom_file(b"1.2.840.10008.1.2.4.50", data_set)


_FREE, _END_OF_CHAIN, _FAT_SECTOR, _NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _ole_dir_entry(name: str, kind: int, start: int, size: int) -> bytes:
    encoded = (name + "\x00").encode("utf-16-le") if name else b""
    return (
        encoded.ljust(64, b"\x00")
        + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", _NO_STREAM, _NO_STREAM, 1 if kind == 5 else _NO_STREAM)
        + b"\x00" * 16  # CLSID
        + b"\x00" * 4  # state bits
        + b"\x00" * 16  # times
        + struct.pack("<IQ", start, size)
    )


def make_ole2(stream_name: str = "WordDocument", stream_sectors: int = 8) -> bytes:
    """Version 3 compound file: sector 0 is the FAT, 1 the directory, then one stream."""
    first_stream, last = 2, 1 + stream_sectors
    fat = [_FAT_SECTOR, _END_OF_CHAIN]
    fat += [sector + 1 for sector in range(first_stream, last)] + [_END_OF_CHAIN]
    fat += [_FREE] * (128 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\x00" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END_OF_CHAIN, 0, _END_OF_CHAIN, 0)
        + struct.pack("<109I", 0, *([_FREE] * 108))
    )
    directory = (
        _ole_dir_entry("Root Entry", 5, _END_OF_CHAIN, 0)
        + _ole_dir_entry(stream_name, 2, first_stream, 512 * stream_sectors)
        + _ole_dir_entry("", 0, 0, 0) * 2
    )
    stream = _noise(512 * stream_sectors, seed=11)
    assert len(header) == 512 and len(directory) == 512
    return header + struct.pack("<128I", *fat) + directory + stream


SAMPLES: dict[str, tuple[Callable[[], bytes], FileKind]] = {
    "png": (make_png, FileKind.PNG),
    "jpeg": (make_jpeg, FileKind.JPEG),
    "progressive-jpeg": (make_progressive_jpeg, FileKind.JPEG),
    "pdf": (make_pdf, FileKind.PDF),
    "docx": (make_docx, FileKind.DOCX),
    "zip": (make_plain_zip, FileKind.ZIP),
    "heic": (make_heic, FileKind.HEIC),
    "dicom": (make_dicom, FileKind.DICOM),
    "dicom-implicit-sequence": (make_implicit_dicom_with_sequence, FileKind.DICOM),
    "dicom-encapsulated": (make_encapsulated_dicom, FileKind.DICOM),
    "doc": (make_ole2, FileKind.DOC),
}

UNSUPPORTED_SAMPLES: dict[str, bytes] = {
    "windows-exe": b"MZ\x90\x00\x03\x00\x00\x00" + _noise(400, seed=20),
    "elf": b"\x7fELF\x02\x01\x01\x00" + _noise(400, seed=21),
    "mach-o": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + _noise(400, seed=22),
    "ogg-opus-voice": b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead" + _noise(300, 23),
    "webp-sticker": b"RIFF\x24\x01\x00\x00WEBPVP8 " + _noise(300, seed=24),
    "tgs-gzip": b"\x1f\x8b\x08\x00" + _noise(300, seed=25),
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + _noise(300, seed=26),
    "mp4-video": make_heic((b"isom", b"isom", b"iso2", b"mp41")),
    "avif": make_heic((b"avif", b"mif1", b"miaf", b"avif")),
    "shell-script": b"#!/bin/sh\nrm -rf ~\n",
    "plain-text": "Анализ крови: гемоглобин 140 г/л\n".encode(),
    "html": b"<!DOCTYPE html><html><body>report</body></html>",
    "gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "xls": make_ole2("Workbook"),
    "xlsx": make_zip({"[Content_Types].xml": _CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>"}),
    "docm": make_zip(
        {
            "[Content_Types].xml": _CONTENT_TYPES,
            "word/document.xml": b"<w:document/>",
            "word/vbaProject.bin": _noise(100, seed=27),
        }
    ),
    "odt": make_zip({"mimetype": b"application/vnd.oasis.opendocument.text", "c.xml": b"<x/>"}),
    "apk": make_zip({"AndroidManifest.xml": b"\x03\x00", "classes.dex": b"dex\n035\x00"}),
    "pe-dicom-polyglot": b"MZ" + b"\x00" * 126 + b"DICM" + make_dicom()[132:],
    "exe-with-pdf-inside": b"MZ" + b"\x00" * 60 + make_pdf(),
    "jpeg-without-image": b"\xff\xd8\xff\xd9",
    "png-without-ihdr": b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + make_png()[16:],
}


def _sample(name: str) -> bytes:
    return SAMPLES[name][0]()


# --------------------------------------------------------------------------- the contract


def test_detection_holds_exactly_one_of_kind_and_problem() -> None:
    assert Detection(kind=FileKind.PDF).ok
    assert not Detection(problem=Problem.EMPTY).ok
    with pytest.raises(ValueError, match="exactly one"):
        Detection()
    with pytest.raises(ValueError, match="exactly one"):
        Detection(kind=FileKind.PDF, problem=Problem.TRUNCATED)


def test_every_kind_is_accepted_and_has_an_extension_and_a_mime_type() -> None:
    assert frozenset(FileKind) == ACCEPTED
    assert {kind: extension_for(kind) for kind in FileKind} == {
        FileKind.JPEG: ".jpg",
        FileKind.PNG: ".png",
        FileKind.HEIC: ".heic",
        FileKind.PDF: ".pdf",
        FileKind.DOC: ".doc",
        FileKind.DOCX: ".docx",
        FileKind.ZIP: ".zip",
        FileKind.DICOM: ".dcm",
    }
    mimes = {mime_for(kind) for kind in FileKind}
    assert len(mimes) == len(FileKind)
    assert mime_for(FileKind.PDF) == "application/pdf"
    assert mime_for(FileKind.DICOM) == "application/dicom"


@pytest.mark.parametrize("name", SAMPLES)
def test_each_accepted_kind_is_detected(name: str) -> None:
    build, kind = SAMPLES[name]
    assert detect(build()) == Detection(kind=kind)


@pytest.mark.parametrize("name", SAMPLES)
def test_cut_in_half_is_truncated(name: str) -> None:
    data = _sample(name)
    assert detect(data[: len(data) // 2]) == Detection(problem=Problem.TRUNCATED)


@pytest.mark.parametrize("name", [name for name in SAMPLES if name != "doc"])
def test_losing_only_the_last_bytes_is_truncated(name: str) -> None:
    # (A DOC may end inside its last sector: see test_ole2_may_end_inside_its_last_sector.)
    data = _sample(name)
    assert detect(data[:-3]).problem is Problem.TRUNCATED


@pytest.mark.parametrize("name", SAMPLES)
def test_trailing_nul_padding_is_tolerated(name: str) -> None:
    _, kind = SAMPLES[name]
    assert detect(_sample(name) + b"\x00" * 5).kind is kind


@pytest.mark.parametrize("name", UNSUPPORTED_SAMPLES)
def test_other_files_are_unsupported(name: str) -> None:
    assert detect(UNSUPPORTED_SAMPLES[name]) == Detection(problem=Problem.UNSUPPORTED)


@pytest.mark.parametrize(
    "data",
    [b"", b" ", b"\x00", b"\n\r\n\t  \x0b\x0c", b"\x00" * 10_000, b"\x00" * 130],
    ids=["zero-bytes", "space", "nul", "whitespace", "many-nuls", "preamble-only"],
)
def test_empty_files(data: bytes) -> None:
    assert detect(data) == Detection(problem=Problem.EMPTY)


def test_an_archive_without_entries_is_empty() -> None:
    assert detect(make_zip({})) == Detection(problem=Problem.EMPTY)
    assert detect(make_zip({})[:10]).problem is Problem.TRUNCATED


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8", b"\x89PNG\r\n", b"\xd0\xcf\x11\xe0", b"PK\x03", b"%PDF"],
    ids=["jpeg", "png", "ole2", "zip", "pdf"],
)
def test_the_start_of_a_signature_alone_is_truncated(data: bytes) -> None:
    assert detect(data).problem is Problem.TRUNCATED


# --------------------------------------------------------------------------- the name is irrelevant


def test_a_png_saved_as_pdf_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "analysis.pdf"
    path.write_bytes(make_png())
    assert detect_path(path) == Detection(kind=FileKind.PNG)


def test_a_text_file_saved_as_pdf_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "analysis.pdf"
    path.write_text("Dear doctor, my results are attached.\n", encoding="utf-8")
    assert detect_path(path) == Detection(problem=Problem.UNSUPPORTED)


# --------------------------------------------------------------------------- format details


def test_jpeg_followed_by_a_video_or_vendor_trailer_is_still_a_jpeg() -> None:
    motion_photo = make_jpeg() + b"\x00\x00\x00\x18ftypmp42" + _noise(3000, seed=30)
    assert detect(motion_photo).kind is FileKind.JPEG
    samsung = make_jpeg() + _noise(200, seed=31) + b"SEFT"
    assert detect(samsung).kind is FileKind.JPEG
    # ...but not when the image before the trailer is itself cut.
    cut_then_trailer = make_jpeg()[:400] + _noise(500, seed=32).replace(b"\xff", b"")
    assert detect(cut_then_trailer).problem is Problem.TRUNCATED


def test_jpeg_thumbnail_end_marker_does_not_hide_a_cut() -> None:
    thumbnail = make_jpeg(scan_size=100)
    exif = _jpeg_segment(0xE1, b"Exif\x00\x00" + b"\x00" * 20 + thumbnail)
    photo = make_jpeg(app1=exif, scan_size=2000)
    assert detect(photo).kind is FileKind.JPEG
    assert detect(photo[: len(photo) - 500]).problem is Problem.TRUNCATED


def test_jpeg_cut_to_nul_fill_is_truncated() -> None:
    photo = make_jpeg(scan_size=2000)
    # An interrupted download into a preallocated file: the real size, zeros at the end.
    assert detect(photo[:1000] + b"\x00" * (len(photo) - 1000)).problem is Problem.TRUNCATED


def test_png_with_data_after_iend_is_still_a_png() -> None:
    assert detect(make_png() + b"some trailer appended by an app").kind is FileKind.PNG


def test_png_cut_to_nul_fill_is_truncated() -> None:
    png = make_png(40, 40)
    assert detect(png[:100] + b"\x00" * (len(png) - 100)).problem is Problem.TRUNCATED


@pytest.mark.parametrize(
    ("brands", "expected"),
    [
        ((b"heic", b"mif1", b"heic"), Detection(kind=FileKind.HEIC)),
        ((b"mif1", b"mif1", b"heic"), Detection(kind=FileKind.HEIC)),  # Samsung
        ((b"heix", b"mif1", b"heix"), Detection(kind=FileKind.HEIC)),
        ((b"msf1", b"msf1", b"hevc"), Detection(kind=FileKind.HEIC)),  # image sequence
        ((b"mif1", b"mif1", b"miaf"), Detection(kind=FileKind.HEIC)),  # generic HEIF
        ((b"avif", b"mif1", b"miaf", b"avif"), Detection(problem=Problem.UNSUPPORTED)),
        ((b"mif1", b"mif1", b"avif"), Detection(problem=Problem.UNSUPPORTED)),
        ((b"qt  ", b"qt  "), Detection(problem=Problem.UNSUPPORTED)),  # iPhone video
        ((b"crx ", b"crx "), Detection(problem=Problem.UNSUPPORTED)),  # Canon raw
    ],
)
def test_heif_brands(brands: tuple[bytes, ...], expected: Detection) -> None:
    assert detect(make_heic(brands)) == expected


def test_heic_cut_right_after_ftyp_is_truncated() -> None:
    heic = make_heic()
    ftyp_size = struct.unpack(">I", heic[:4])[0]
    assert detect(heic[:ftyp_size]).problem is Problem.TRUNCATED
    assert detect(heic[:10]).problem is Problem.TRUNCATED


def test_pdf_with_junk_before_the_header_is_a_pdf() -> None:
    assert detect(b"\xef\xbb\xbf\r\n" + make_pdf()).kind is FileKind.PDF
    assert detect(b"x" * 1100 + make_pdf()).problem is Problem.UNSUPPORTED


def test_pdf_with_incremental_update_and_trailing_whitespace_is_a_pdf() -> None:
    updated = make_pdf() + b"1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\r\n" + b" " * 3000
    assert detect(updated).kind is FileKind.PDF


def test_pdf_cut_before_eof_marker_is_truncated() -> None:
    pdf = make_pdf()
    big = pdf.replace(b"(Hi)", b"(" + b"A" * 5000 + b")")
    assert detect(big[: big.index(b"xref")]).problem is Problem.TRUNCATED


def test_docx_detection_is_case_insensitive_and_needs_both_parts() -> None:
    docx_only_document = make_zip({"word/document.xml": b"<w:document/>"})
    assert detect(docx_only_document).kind is FileKind.ZIP
    upper = make_zip({"[CONTENT_TYPES].XML": _CONTENT_TYPES, "Word/Document.xml": b"<w/>"})
    assert detect(upper).kind is FileKind.DOCX


def test_zip_with_comment_is_a_zip() -> None:
    assert detect(make_zip({"a.txt": b"hello"}, comment=b"made by a scanner")).kind is (
        FileKind.ZIP
    )


def test_cut_zip_holding_another_zip_is_truncated() -> None:
    inner = make_zip({"inner.txt": b"x" * 10})
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("nested.zip", inner)
        archive.writestr("big.bin", _noise(5000, seed=33))
    data = outer.getvalue()
    assert detect(data).kind is FileKind.ZIP
    # Cut right after the nested archive: its end record is now near the end of the data.
    cut = data.index(inner) + len(inner) + 10
    assert detect(data[:cut]).problem is Problem.TRUNCATED


def test_zip_with_broken_central_directory_is_unsupported() -> None:
    data = bytearray(make_plain_zip())
    directory = data.index(b"PK\x01\x02")
    data[directory : directory + 4] = b"XX\x01\x02"
    assert detect(bytes(data)).problem is Problem.UNSUPPORTED


def test_ole2_version_4_with_4096_byte_sectors_is_checked() -> None:
    doc = make_ole2()
    header = bytearray(doc[:512])
    header[26:28] = struct.pack("<H", 4)
    header[30:32] = struct.pack("<H", 12)
    # Rebuild with 4096-byte sectors: same layout, each 512-byte sector padded.
    sectors = [doc[at : at + 512].ljust(4096, b"\xff" if at == 512 else b"\x00") for at in (512,)]
    sectors += [doc[at : at + 512].ljust(4096, b"\x00") for at in range(1024, len(doc), 512)]
    v4 = bytes(header).ljust(4096, b"\x00") + b"".join(sectors)
    assert detect(v4).kind is FileKind.DOC
    assert detect(v4[: len(v4) - 4096]).problem is Problem.TRUNCATED
    assert detect(v4[:3000]).problem is Problem.TRUNCATED


def test_ole2_may_end_inside_its_last_sector() -> None:
    doc = make_ole2()
    assert detect(doc[:-100]).kind is FileKind.DOC
    assert detect(doc[:-600]).problem is Problem.TRUNCATED


def test_ole2_header_alone_is_truncated() -> None:
    assert detect(make_ole2()[:512]).problem is Problem.TRUNCATED
    assert detect(make_ole2()[:300]).problem is Problem.TRUNCATED


def test_dicom_without_preamble_is_unsupported() -> None:
    assert detect(make_dicom()[128:]).problem is Problem.UNSUPPORTED


def test_dicom_ending_right_after_the_magic_is_truncated() -> None:
    assert detect(make_dicom()[:132]).problem is Problem.TRUNCATED
    assert detect(make_dicom()[:140]).problem is Problem.TRUNCATED


def test_dicom_the_walk_does_not_understand_is_still_dicom() -> None:
    deflated = _dicom_file(b"1.2.840.10008.1.2.1.99", zlib.compress(b"anything"))
    assert detect(deflated).kind is FileKind.DICOM
    garbled = make_dicom() + b"\x01\x02??" + b"\x00" * 20
    assert detect(garbled).kind is FileKind.DICOM


def test_dicom_whose_data_set_is_not_encoded_as_its_meta_says_is_still_walked() -> None:
    # Explicit VR announced, implicit VR written: a known quirk of some writers.
    data_set = _implicit_element(0x0010, 0x0010, b"Doe^Jane") + _implicit_element(
        0x7FE0, 0x0010, _noise(512, seed=35)
    )
    dicom = _dicom_file(b"1.2.840.10008.1.2.1", data_set)
    assert detect(dicom).kind is FileKind.DICOM
    assert detect(dicom[:-10]).problem is Problem.TRUNCATED


def test_big_endian_dicom() -> None:
    data_set = struct.pack(">HH2sH", 0x0010, 0x0010, b"PN", 8) + b"Doe^Jane"
    data_set += struct.pack(">HH2s2xI", 0x7FE0, 0x0010, b"OW", 256) + _noise(256, seed=34)
    dicom = _dicom_file(b"1.2.840.10008.1.2.2", data_set)
    assert detect(dicom).kind is FileKind.DICOM
    assert detect(dicom[:-10]).problem is Problem.TRUNCATED


# --------------------------------------------------------------------------- files on disk


def _all_cases() -> Iterator[tuple[str, bytes]]:
    for name in SAMPLES:
        data = _sample(name)
        yield name, data
        yield f"{name}-half", data[: len(data) // 2]
        yield f"{name}-padded", data + b"\x00" * 3
    yield from UNSUPPORTED_SAMPLES.items()
    yield "empty", b""
    yield "blank", b" \n\x00"


@pytest.mark.parametrize(("name", "data"), list(_all_cases()), ids=[n for n, _ in _all_cases()])
def test_detect_path_agrees_with_detect(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    assert detect_path(path) == detect(data)


class _CountingFile(io.FileIO):
    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        _CountingFile.bytes_read += len(data)
        return data


_BIG = 8 << 20


def _big_jpeg() -> bytes:
    return make_jpeg(scan_size=_BIG)


def _big_png() -> bytes:
    return make_png(1200, 1200)  # random rows do not compress: about 4 MB in one IDAT chunk


def _big_pdf() -> bytes:
    return make_pdf().replace(b"(Hi)", b"(" + b"A" * _BIG + b")")


def _big_zip() -> bytes:
    return make_zip({f"IM{n:06d}": _noise(1 << 20, seed=n) for n in range(8)})


def _big_dicom() -> bytes:
    return _dicom_file(
        b"1.2.840.10008.1.2.1",
        _dicom_element(0x0010, 0x0010, b"PN", b"Doe^Jane")
        + _dicom_element(0x7FE0, 0x0010, b"OW", b"\x01" * _BIG),
    )


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        (_big_jpeg, FileKind.JPEG),
        (_big_png, FileKind.PNG),
        (_big_pdf, FileKind.PDF),
        (_big_zip, FileKind.ZIP),
        (_big_dicom, FileKind.DICOM),
    ],
    ids=["jpeg", "png", "pdf", "zip", "dicom"],
)
def test_detect_path_reads_only_head_and_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Callable[[], bytes], kind: FileKind
) -> None:
    data = build()
    assert len(data) > 4 << 20
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    def counting_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> io.FileIO:
        return _CountingFile(self, mode)

    _CountingFile.bytes_read = 0
    monkeypatch.setattr(Path, "open", counting_open)
    assert detect_path(path).kind is kind
    assert 0 < _CountingFile.bytes_read < 512 << 10


def test_detect_path_reads_a_file_at_most_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A JPEG with a trailer must be scanned for its end marker: once through, not more.
    data = _big_jpeg() + _noise(1000, seed=40)
    path = tmp_path / "motion.jpg"
    path.write_bytes(data)

    def counting_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> io.FileIO:
        return _CountingFile(self, mode)

    _CountingFile.bytes_read = 0
    monkeypatch.setattr(Path, "open", counting_open)
    assert detect_path(path).kind is FileKind.JPEG
    assert len(data) // 2 < _CountingFile.bytes_read <= len(data) + (256 << 10)


def test_detect_path_raises_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        detect_path(tmp_path / "gone.pdf")


# --------------------------------------------------------------------------- robustness


def _mutations(data: bytes, rng: random.Random) -> Iterator[bytes]:
    for _ in range(40):
        cut = rng.randrange(len(data) + 1)
        yield data[:cut]
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        yield bytes(mutated)
        at = rng.randrange(len(data))
        yield data[:at] + rng.randbytes(rng.randrange(1, 64)) + data[at:]


def test_random_bytes_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(2024)
    with caplog.at_level(logging.ERROR, logger=filetypes.__name__):
        for size in [*range(300), *(rng.randrange(300, 70_000) for _ in range(200))]:
            assert isinstance(detect(rng.randbytes(size)), Detection)
    assert not caplog.records  # no internal error was caught and logged either


def test_mutated_samples_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(7)
    with caplog.at_level(logging.ERROR, logger=filetypes.__name__):
        for build, _ in SAMPLES.values():
            for data in _mutations(build(), rng):
                assert isinstance(detect(data), Detection)
        for signature in (
            b"\xff\xd8\xff",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            b"PK\x03\x04",
            b"PK\x05\x06",
            b"%PDF-",
            b"\x00\x00\x00\x18ftypheic",
            b"\x00" * 128 + b"DICM",
        ):
            for size in range(0, 2000, 7):
                assert isinstance(detect(signature + rng.randbytes(size)), Detection)
    assert not caplog.records
