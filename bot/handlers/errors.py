"""The one error handler: a short apology, the dialogue stays where it was, an id-only log.

A button press is answered exactly once, failure or not (Telegram refuses a second answer):
``CallbackAnswerMiddleware`` answers after a handler that succeeded and leaves a failed press
unanswered for the error handler, whose answer is the apology. When the press had already been
answered before the failure, the apology comes as a message instead."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Router
from aiogram.dispatcher.flags import get_flag
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import CallbackQuery, ErrorEvent, TelegramObject, Update
from aiogram.utils.callback_answer import CallbackAnswerMiddleware as _AiogramCallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.logging_setup import safe_exc_info
from bot.services.patients import PatientService

logger = logging.getLogger("bot.errors")

#: A note on an exception raised after its button press had been answered.
ANSWERED_NOTE = "the callback query had been answered before the failure"


class CallbackAnswerMiddleware(_AiogramCallbackAnswer):
    """aiogram's answering middleware, except that a failed press is not answered here."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, CallbackQuery):
            return await handler(event, data)
        answer = data["callback_answer"] = self.construct_callback_answer(
            properties=get_flag(data, "callback_answer")
        )
        if not answer.disabled and answer.answered:
            await self.answer(event, answer)
        try:
            result = await handler(event, data)
        except Exception as exc:
            if answer.disabled or answer.answered:  # answered by the handler or beforehand
                exc.add_note(ANSWERED_NOTE)
            raise
        if not answer.disabled and not answer.answered:
            try:
                await self.answer(event, answer)
            except TelegramBadRequest:  # the press is too old to answer; the work is done
                logger.info("callback query %s: too old to answer", event.id)
        return result


def _answered_before(exc: BaseException) -> bool:
    return ANSWERED_NOTE in getattr(exc, "__notes__", ())


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
            if not _answered_before(exc):
                try:
                    await update.callback_query.answer(_("common.error"), show_alert=True)
                    return
                except TelegramAPIError:  # too old to answer: send a message
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
