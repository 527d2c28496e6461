"""Keyboards of the consultation day: the patient's reminders and the doctors' heads-up."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsultDocsCb, NoShowCb, RemindAction, RemindCb
from bot.i18n import N_
from bot.keyboards.builder import InlineKeyboardBuilder


def answers(consultation_id: int, minutes: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for action, key in (
        (RemindAction.ATTEND, N_("btn.day_attend")),
        (RemindAction.CANNOT, N_("btn.day_cannot")),
        (RemindAction.MOVE, N_("btn.day_move")),
    ):
        kb.button(
            text=_(key), callback_data=RemindCb(action=action, id=consultation_id, minutes=minutes)
        )
    kb.adjust(2, 1)
    return kb.as_markup()


def join(video_url: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.consult_join"), url=video_url)
    return kb.as_markup()


def headsup(consultation_id: int, video_url: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.consult_join"), url=video_url)
    kb.button(text=_("btn.day_no_show"), callback_data=NoShowCb(id=consultation_id))
    kb.button(text=_("btn.staff_documents"), callback_data=ConsultDocsCb(id=consultation_id))
    kb.adjust(1)
    return kb.as_markup()
