"""gettext catalogs: compiled from locales/*/LC_MESSAGES/*.po at start, and the locale choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


def compile_locales(path: Path = LOCALES_DIR) -> list[Path]:
    """Compile each locale's catalogs into one ``messages.mo`` when any .po is newer.

    A locale may split its texts over several .po files (one per feature, e.g. ``relay.po``);
    they are merged into the one gettext domain the bot uses."""
    written = []
    for folder in sorted(p for p in path.glob("*/LC_MESSAGES") if p.is_dir()):
        sources = sorted(folder.glob("*.po"))
        if not sources:
            continue
        mo_path = folder / f"{DOMAIN}.mo"
        newest = max(po.stat().st_mtime for po in sources)
        if mo_path.exists() and mo_path.stat().st_mtime >= newest:
            continue
        locale = folder.parent.name
        merged = read_catalog(sources[0], locale)
        for extra in sources[1:]:
            for message in read_catalog(extra, locale):
                if message.id:
                    merged[message.id] = message
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as mo_file:
            write_mo(mo_file, merged, use_fuzzy=False)
        tmp.replace(mo_path)
        written.append(mo_path)
    return written


def read_catalog(po_path: Path, locale: str) -> Catalog:
    with po_path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def create_i18n(default_locale: str = "ru") -> I18n:
    compile_locales()
    return I18n(path=LOCALES_DIR, default_locale=default_locale, domain=DOMAIN)


def variants(i18n: I18n, key: str) -> frozenset[str]:
    """A text in every locale: a menu button keeps working after the language is switched."""
    return frozenset(i18n.gettext(key, locale=locale) for locale in i18n.available_locales)


class LocaleMiddleware(I18nMiddleware):
    """The patient's chosen language, else Telegram's when we have it, else the default."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        patient = data.get("patient")
        if patient is not None and patient.locale in self.i18n.available_locales:
            return str(patient.locale)
        user: User | None = data.get("event_from_user")
        if user and user.language_code:
            language = user.language_code.split("-")[0].lower()
            if language in self.i18n.available_locales:
                return language
        return self.i18n.default_locale


def N_(key: str) -> str:
    """Marks a message id for extraction where the text is looked up later."""
    return key


def menu_texts(i18n: I18n) -> frozenset[str]:
    """Every main-menu button in every language: a press leaves whatever step the user is on."""
    from bot.keyboards.menu import MENU_ITEMS

    return frozenset().union(*(variants(i18n, key) for key in MENU_ITEMS))
