"""Our inline keyboard builder (no copy per button) lays out keyboards exactly as aiogram's."""

from __future__ import annotations

import itertools

import pytest
from aiogram.types import InlineKeyboardButton
from aiogram.utils import keyboard
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.keyboards.builder import InlineKeyboardBuilder

LAYOUTS = [(), (1,), (2,), (3, 1), (2, 2, 1), (8,), (1, 3)]


def fill(builder: keyboard.InlineKeyboardBuilder, count: int, sizes: tuple[int, ...]) -> None:
    for n in range(count):
        builder.button(text=f"b{n}", callback_data=f"d{n}")
    if count > 2:
        builder.row(InlineKeyboardButton(text="r1", callback_data="r1"), width=1)
        builder.add(*(InlineKeyboardButton(text=f"a{n}", callback_data=f"a{n}") for n in range(9)))
    if sizes:
        builder.adjust(*sizes)


@pytest.mark.parametrize(("count", "sizes"), list(itertools.product([0, 1, 5, 12, 20], LAYOUTS)))
def test_same_layout_as_aiogram(count: int, sizes: tuple[int, ...]) -> None:
    ours, theirs = InlineKeyboardBuilder(), keyboard.InlineKeyboardBuilder()
    fill(ours, count, sizes)
    fill(theirs, count, sizes)
    assert ours.as_markup() == theirs.as_markup()
    assert list(ours.buttons) == list(theirs.buttons)


def test_a_returned_markup_does_not_change_when_the_builder_goes_on() -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text="one", callback_data="1")
    markup = builder.as_markup()
    builder.button(text="two", callback_data="2")
    builder.adjust(1)
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["one"]]
    assert [[b.text for b in row] for row in builder.as_markup().inline_keyboard] == [
        ["one"],
        ["two"],
    ]


def test_a_shared_keyboard_is_in_the_language_of_whoever_it_is_shown_to(
    i18n: I18n, catalog: Catalog
) -> None:
    """Keyboards built once per language (``per_locale``) and shared between patients: each
    patient still gets the buttons in their own language, and page N of the regions is page N."""
    from bot.keyboards import menu, registration

    with i18n.context():
        with i18n.use_locale("ru"):
            russian = menu.main_menu()
            first = registration.region_page(catalog.regions_by_name("ru"), 0, "ru")
            second = registration.region_page(catalog.regions_by_name("ru"), 1, "ru")
        with i18n.use_locale("en"):
            english = menu.main_menu()
        with i18n.use_locale("ru"):
            again = menu.main_menu()
    assert "👤 Профиль" in [button.text for row in russian.keyboard for button in row]
    assert english.keyboard != russian.keyboard
    assert "Profile" in " ".join(button.text for row in english.keyboard for button in row)
    assert again is russian  # built once, shared
    assert first.inline_keyboard[0][0].text != second.inline_keyboard[0][0].text
    names = [r.name.get("ru") for r in catalog.regions_by_name("ru")]
    assert names == sorted(names)
    assert first.inline_keyboard[0][0].text == names[0]
