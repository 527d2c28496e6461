"""aiogram's inline keyboard builder, without its copy per button.

aiogram's ``KeyboardBuilder.add`` deep-copies the whole keyboard built so far on every button
(``export()``), and ``adjust``/``as_markup`` copy it again: a page of ten regions cost about a
hundred pydantic deep copies, some 7 % of an update's CPU in the registration dialogue. Our
builders are local to one keyboard function and dropped after ``as_markup()``, so the buttons
need no copy; the rows are still copied, so a builder reused after ``as_markup()`` does not
change a markup already returned. Everything else (validation, ``button``, ``adjust``, widths)
is aiogram's own.
"""

from __future__ import annotations

from collections.abc import Generator

from aiogram.types import InlineKeyboardButton
from aiogram.utils import keyboard


class InlineKeyboardBuilder(keyboard.InlineKeyboardBuilder):
    def export(self) -> list[list[InlineKeyboardButton]]:
        return [list(row) for row in self._markup]

    @property
    def buttons(self) -> Generator[InlineKeyboardButton, None, None]:
        for row in self._markup:
            yield from row

    def add(self, *buttons: InlineKeyboardButton) -> InlineKeyboardBuilder:
        self._validate_buttons(*buttons)
        markup, width = self._markup, self.max_width
        if markup and len(markup[-1]) < width:  # fill the last row first, as aiogram does
            room = width - len(markup[-1])
            markup[-1].extend(buttons[:room])
            buttons = buttons[room:]
        if width > 0:
            markup.extend(list(buttons[pos : pos + width]) for pos in range(0, len(buttons), width))
        else:
            markup.append(list(buttons))
        return self
