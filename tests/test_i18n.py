"""Both catalogs are complete: every message id used in the code is translated, none fuzzy."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR
from tests.conftest import ROOT

KEYWORDS = {**DEFAULT_KEYWORDS, "__": None}


def used_ids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "bot"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def load(locale: str):  # type: ignore[no-untyped-def]
    """Every .po of the locale merged (features may keep their texts in files of their own)."""
    sources = sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po"))
    with sources[0].open("rb") as f:
        merged = read_po(f, locale=locale)
    for extra in sources[1:]:
        with extra.open("rb") as f:
            for message in read_po(f, locale=locale):
                if message.id:
                    assert message.id not in merged, f"{message.id} defined twice"
                    merged[message.id] = message
    return merged


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_catalog_is_complete(locale: str) -> None:
    catalog = load(locale)
    ids = used_ids()
    assert len(ids) > 50
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    assert ids - known == set(), f"untranslated in {locale}"
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, f"fuzzy in {locale}: {message.id}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings), f"empty in {locale}: {message.id}"


def test_locales_agree_on_placeholders_and_markup() -> None:
    ru = {m.id: m.string for m in load("ru") if m.id}
    en = {m.id: m.string for m in load("en") if m.id}
    assert set(ru) == set(en)
    for key, text in ru.items():
        ru_text = " ".join(text) if isinstance(text, tuple | list) else text
        en_text = " ".join(en[key]) if isinstance(en[key], tuple | list) else en[key]
        assert fields(ru_text) == fields(en_text), key
        assert re.findall(r"</?\w+>", ru_text) == re.findall(r"</?\w+>", en_text), key


def test_no_cyrillic_literals_in_handlers() -> None:
    for path in (ROOT / "bot" / "handlers").glob("*.py"):
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.strip().startswith("#")
        )
        code = re.sub(r'"""[\s\S]*?"""', "", code)
        assert not re.search(r"[А-Яа-яЁё]", code), path.name


def test_every_key_literal_in_the_code_is_translated() -> None:
    """Keys looked up indirectly (tables of keys, ``_(key)``) are checked too."""
    catalog = load("ru")
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    prefixes = {key.split(".")[0] for key in known}
    literals = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for match in re.finditer(r"\"([a-z]+\.[a-z_]+)\"", path.read_text(encoding="utf-8")):
            if match.group(1).split(".")[0] in prefixes:
                literals.add(match.group(1))
    plural_ids = {m.id[1] for m in catalog if m.id and not isinstance(m.id, str)}
    assert literals - known - plural_ids == set()
