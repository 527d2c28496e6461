"""The translations are maintained with pybabel: the committed template is what extraction finds in
the code, both catalogs hold exactly its ids, every one translated, none fuzzy."""

from __future__ import annotations

import re
import shlex
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR
from bot.locale_build import DOMAIN
from tests.conftest import ROOT

TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
# The README's commands (test_readme_shows_the_commands keeps them the same).
EXTRACT = (
    "pybabel extract -F babel.cfg -k __ -k lazy_gettext --no-location --sort-output "
    "-o locales/messages.pot bot scheduler"
)
UPDATE = (
    "pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching "
    "--ignore-obsolete --ignore-pot-creation-date"
)
COMPILE = "pybabel compile -d locales -D messages --statistics"


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def load(locale: str) -> Catalog:
    return read(LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", locale)


def ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def body(path: Path) -> str:
    """The template without its header (the creation date and Babel's version change)."""
    return path.read_text(encoding="utf-8").split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's extraction run now, into a temporary template."""
    target = tmp_path_factory.mktemp("pot") / "messages.pot"
    argv = shlex.split(EXTRACT.replace("locales/messages.pot", str(target)))
    argv[1:1] = ["--quiet"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        CommandLineInterface().run(argv)
    return target


def test_template_is_up_to_date(extracted: Path) -> None:
    assert body(TEMPLATE) == body(extracted), (
        "locales/messages.pot is stale: run the README's pybabel extract, then pybabel update "
        "and translate the new ids in both catalogs"
    )


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_catalog_is_complete(locale: str, extracted: Path) -> None:
    """What pybabel update would leave: the template's ids, none missing, none left over."""
    catalog = load(locale)
    used = ids(read(extracted))
    assert len(used) > 50
    assert used - ids(catalog) == set(), f"untranslated in {locale}"
    assert ids(catalog) - used == set(), f"unused in {locale} (pybabel update drops them)"
    assert not catalog.obsolete, f"obsolete in {locale}: {list(catalog.obsolete)}"
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, f"fuzzy in {locale}: {message.id}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings), f"empty in {locale}: {message.id}"


def test_one_domain_in_the_standard_layout() -> None:
    catalogs = sorted(p.relative_to(LOCALES_DIR).as_posix() for p in LOCALES_DIR.rglob("*.po"))
    assert catalogs == ["en/LC_MESSAGES/messages.po", "ru/LC_MESSAGES/messages.po"]


def test_readme_shows_the_commands() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    for command in (EXTRACT, UPDATE, COMPILE):
        assert command in readme, command


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


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
    """Keys looked up indirectly (tables of keys, ``_(key)``) are checked too. As the catalogs
    hold only the template's ids, this also means every key is marked for extraction (``N_``):
    a bare literal would be missed by pybabel extract, and pybabel update would drop its texts."""
    catalog = load("ru")
    known = ids(catalog)
    prefixes = {key.split(".")[0] for key in known}
    literals = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for match in re.finditer(r"\"([a-z]+\.[a-z_]+)\"", path.read_text(encoding="utf-8")):
            if match.group(1).split(".")[0] in prefixes:
                literals.add(match.group(1))
    plural_ids = {m.id[1] for m in catalog if m.id and not isinstance(m.id, str)}
    assert literals - known - plural_ids == set()
