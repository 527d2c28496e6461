"""Small helpers shared by handlers."""

from __future__ import annotations

import contextlib

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer


async def drop_buttons(query: CallbackQuery) -> None:
    """Take the keyboard off a message whose question was answered (no second press)."""
    if isinstance(query.message, Message) and query.message.reply_markup:
        await edit_markup(query.message, None)


async def edit_markup(message: Message, markup: InlineKeyboardMarkup | None) -> None:
    # Already edited (a double click) or too old to edit: nothing to do.
    with contextlib.suppress(TelegramBadRequest):
        await message.edit_reply_markup(reply_markup=markup)


async def edit_or_send(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Edit the message the button was on; a message too old to edit gets a new one."""
    if not isinstance(query.message, Message):
        return
    try:
        await query.message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest:
        await query.message.answer(text, reply_markup=markup)


def alert(callback_answer: CallbackAnswer, text: str) -> None:
    """Answer the button press with a box the user closes (not a toast that fades)."""
    callback_answer.text = text
    callback_answer.show_alert = True
