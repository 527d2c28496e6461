"""Compiling the translations: each language's ``locales/<lang>/LC_MESSAGES/*.po`` merged into one
``messages.mo``. The build runs it (``setup.py`` puts the catalogs into the package); a source
checkout runs it at start, into a cache directory. Only Babel is imported: the build loads this
file on its own, without the bot's dependencies."""

from __future__ import annotations

import hashlib
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "messages"


def source_folders(source: Path) -> list[Path]:
    """``<lang>/LC_MESSAGES`` folders under ``source`` that hold at least one .po file."""
    return sorted(p for p in source.glob("*/LC_MESSAGES") if p.is_dir() and any(p.glob("*.po")))


def sources_digest(source: Path) -> str:
    """A digest of every .po (names and bytes): the cache key of their compiled catalogs."""
    digest = hashlib.sha256()
    for folder in source_folders(source):
        for po in sorted(folder.glob("*.po")):
            digest.update(str(po.relative_to(source)).encode())
            digest.update(po.read_bytes())
    return digest.hexdigest()[:16]


def compile_catalogs(source: Path, target: Path) -> list[Path]:
    """Write ``target/<lang>/LC_MESSAGES/messages.mo`` for each language under ``source``.

    A language may split its texts over several .po files (one per feature, e.g. ``relay.po``);
    they are merged into the one gettext domain the bot uses. Each file is written under a
    temporary name and renamed, so a reader never sees half a catalog."""
    written = []
    for folder in source_folders(source):
        locale = folder.parent.name
        sources = sorted(folder.glob("*.po"))
        merged = read_catalog(sources[0], locale)
        for extra in sources[1:]:
            for message in read_catalog(extra, locale):
                if message.id:
                    merged[message.id] = message
        out_dir = target / locale / "LC_MESSAGES"
        out_dir.mkdir(parents=True, exist_ok=True)
        mo_path = out_dir / f"{DOMAIN}.mo"
        tmp = out_dir / f"{DOMAIN}.mo.tmp"
        with tmp.open("wb") as mo_file:
            write_mo(mo_file, merged, use_fuzzy=False)
        tmp.replace(mo_path)
        written.append(mo_path)
    return written


def read_catalog(po_path: Path, locale: str) -> Catalog:
    with po_path.open("rb") as po_file:
        return read_po(po_file, locale=locale)
