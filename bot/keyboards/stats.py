"""Keyboards of the coordinators' statistics: the export's period."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import ExportCb, ExportPeriod


def export_periods() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("export.btn_this_month"), callback_data=ExportCb(period=ExportPeriod.THIS_MONTH)
    )
    kb.button(
        text=_("export.btn_last_month"), callback_data=ExportCb(period=ExportPeriod.LAST_MONTH)
    )
    kb.button(text=_("export.btn_cancel"), callback_data=ExportCb(period=ExportPeriod.CANCEL))
    kb.adjust(2, 1)
    return kb.as_markup()
