"""gettext catalogs and the locale choice.

An installed package carries its compiled catalogs (``bot/locales``, made by the build from
``locales/<lang>/LC_MESSAGES/messages.po``). A source checkout compiles the .po files at start
into a cache directory keyed by their digest: nothing is ever written into the package or the
checkout."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware

from bot.locale_build import DOMAIN, compile_catalogs, po_files, sources_digest

log = logging.getLogger(__name__)

#: The .po sources (a source checkout; absent in an installed package).
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
#: The compiled catalogs an installed package carries.
PACKAGED_LOCALES = Path(__file__).resolve().parent / "locales"


class TranslationsMissingError(RuntimeError):
    """Neither compiled catalogs in the package nor .po sources beside it."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/oblako-bot`` (``~/.cache/oblako-bot``), else a per-user temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oblako-bot"


def _compiled_in_cache(source: Path) -> Path:
    digest = sources_digest(source)
    fallback = Path(tempfile.gettempdir()) / f"oblako-bot-{os.getuid()}"
    for root in (cache_root(), fallback):
        target = root / f"locales-{digest}"
        if all(
            (target / po.relative_to(source)).with_suffix(".mo").exists() for po in po_files(source)
        ):
            return target
        try:
            compile_catalogs(source, target)
        except OSError as error:
            log.warning("translations: cannot write to %s (%s)", root, type(error).__name__)
            continue
        return target
    raise TranslationsMissingError("no writable cache directory for the compiled translations")


def locales_path(source: Path = LOCALES_DIR, packaged: Path = PACKAGED_LOCALES) -> Path:
    """Where the compiled catalogs are: the .po sources of a checkout compiled into the cache
    (they are the newest), else those the package was built with."""
    if po_files(source):
        return _compiled_in_cache(source)
    if any(packaged.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")):
        return packaged
    raise TranslationsMissingError(
        f"no translations: neither {packaged} (an installed package) nor "
        f"{source}/*/LC_MESSAGES/{DOMAIN}.po (a source checkout) exists; reinstall the package"
    )


def create_i18n(default_locale: str = "ru") -> I18n:
    return I18n(path=locales_path(), default_locale=default_locale, domain=DOMAIN)


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
