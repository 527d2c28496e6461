"""Long lists in pages: Telegram allows at most 100 buttons under a message, and a list of 10 is
what a person can read. The pager row is ◀️ n/m ▶️ (wrapping round), as under the region list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiogram.filters.callback_data import CallbackData

from bot.keyboards.builder import InlineKeyboardBuilder

T = TypeVar("T")

PER_PAGE = 10


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int  # from 0, clamped to the pages there are
    pages: int


def page_of(items: Sequence[T], page: int, per_page: int = PER_PAGE) -> Page[T]:
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 0), pages - 1)
    return Page(items[page * per_page : (page + 1) * per_page], page, pages)


def add_pager(
    kb: InlineKeyboardBuilder, page: Page[T], to_page: Callable[[int], CallbackData]
) -> list[int]:
    """Add the pager buttons (none for a single page); returns their row sizes for ``adjust``."""
    if page.pages <= 1:
        return []
    kb.button(text="◀️", callback_data=to_page((page.page - 1) % page.pages))
    kb.button(text=f"{page.page + 1}/{page.pages}", callback_data=to_page(page.page))
    kb.button(text="▶️", callback_data=to_page((page.page + 1) % page.pages))
    return [3]
