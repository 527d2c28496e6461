"""The one error handler: a short apology, the dialogue stays where it was, an id-only log."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import ErrorEvent, Update
from aiogram.utils.i18n import gettext as _

from bot.logging_setup import safe_exc_info
from bot.services.patients import PatientService

logger = logging.getLogger("bot.errors")


def router() -> Router:
    r = Router(name="errors")

    @r.errors()
    async def on_error(event: ErrorEvent, bot: Bot, patients: PatientService | None = None) -> None:
        update = event.update
        exc = event.exception
        if isinstance(exc, TelegramForbiddenError) and _in_private_chat(update):
            # The user blocked the bot while we answered: not an error of ours, no trace.
            user = getattr(update.event, "from_user", None)
            logger.info("update %s: user blocked the bot", update.update_id)
            if patients is not None and user is not None:
                await patients.mark_unreachable(None, user.id)
            return
        # Only ids and the exception type: an exception's text may quote what the user typed.
        logger.error(
            "update %s failed: %s",
            update.update_id,
            type(exc).__name__,
            exc_info=safe_exc_info(exc),
        )
        chat_id = None
        if update.message:
            chat_id = update.message.chat.id
        elif update.callback_query:
            chat_id = update.callback_query.from_user.id
            try:
                await update.callback_query.answer(_("common.error"), show_alert=True)
                return
            except TelegramAPIError:  # already answered or too old: send a message
                logger.debug("update %s: could not answer the callback", update.update_id)
        if chat_id is not None:
            try:
                await bot.send_message(chat_id, _("common.error"))
            except TelegramAPIError:  # the apology is best effort
                logger.warning("update %s: could not send the apology", update.update_id)

    return r


def _in_private_chat(update: Update) -> bool:
    query = update.callback_query
    message = update.message or (query.message if query is not None else None)
    return message is not None and message.chat.type == "private"
