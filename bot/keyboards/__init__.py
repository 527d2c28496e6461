"""Keyboard builders. Button texts come from i18n; callback data from bot.callbacks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TypeVar

from aiogram.utils.i18n import get_i18n

Markup = TypeVar("Markup")

#: keyboards kept per builder: a few locales times a few argument values (region pages: ~9)
_KEPT = 64


def per_locale(build: Callable[..., Markup]) -> Callable[..., Markup]:
    """A keyboard that depends on nothing but its (hashable) arguments and the patient's
    language is built once per both and then shared: a markup is never changed after it is
    built. The menu, the step buttons and the region pages were rebuilt (pydantic models, one
    per button) on nearly every update."""

    @functools.lru_cache(maxsize=_KEPT)
    def built(locale: str, *args: Hashable, **kwargs: Hashable) -> Markup:
        return build(*args, **kwargs)

    @functools.wraps(build)
    def cached(*args: Hashable, **kwargs: Hashable) -> Markup:
        return built(get_i18n().current_locale, *args, **kwargs)

    return cached
