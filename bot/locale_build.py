"""Compiling the translations: each ``locales/<lang>/LC_MESSAGES/messages.po`` into ``messages.mo``,
as ``pybabel compile`` does, but into a directory of our choice. The build runs it (``setup.py``
puts the catalogs into the package); a source checkout runs it at start, into a cache directory.
Only Babel is imported: the build loads this file on its own, without the bot's dependencies."""

from __future__ import annotations

import hashlib
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

#: The one gettext domain (aiogram's I18n reads one): ``locales/messages.pot`` is its template.
DOMAIN = "messages"


def po_files(source: Path) -> list[Path]:
    """The catalogs under ``source``: ``<lang>/LC_MESSAGES/messages.po``."""
    return sorted(p for p in source.glob(f"*/LC_MESSAGES/{DOMAIN}.po") if p.is_file())


def sources_digest(source: Path) -> str:
    """A digest of every catalog (names and bytes): the cache key of their compiled forms."""
    digest = hashlib.sha256()
    for po in po_files(source):
        digest.update(str(po.relative_to(source)).encode())
        digest.update(po.read_bytes())
    return digest.hexdigest()[:16]


def compile_catalogs(source: Path, target: Path) -> list[Path]:
    """Write ``target/<lang>/LC_MESSAGES/messages.mo`` for each catalog under ``source``, fuzzy
    entries left out. Each file is written under a temporary name and renamed, so a reader never
    sees half a catalog."""
    written = []
    for po_path in po_files(source):
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        mo_path = target / po_path.relative_to(source).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as mo_file:
            write_mo(mo_file, catalog, use_fuzzy=False)
        tmp.replace(mo_path)
        written.append(mo_path)
    return written
