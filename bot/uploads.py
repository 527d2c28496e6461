"""Finishing upload batches: a timer per batch closes it once the patient stops sending, then
the type is asked or the files are verified and acknowledged. The batch itself lives in the
database, so timers are only a trigger and are rebuilt from it after a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _

from bot.catalog import Catalog
from bot.i18n import N_
from bot.keyboards import documents as kb
from bot.logging_setup import safe_exc_info
from bot.messengers.routing import messenger_of
from bot.services.clock import Clock
from bot.services.documents import (
    BatchReport,
    ClosedBatch,
    DocumentService,
    Refusal,
    TooBigError,
)
from bot.views import format_local_date

logger = logging.getLogger("bot.uploads")

REFUSALS = {
    Refusal.TOO_BIG: N_("upload.refused_too_big"),
    Refusal.EMPTY: N_("upload.refused_empty"),
    Refusal.TRUNCATED: N_("upload.refused_truncated"),
    Refusal.UNSUPPORTED: N_("upload.refused_unsupported"),
    Refusal.DUPLICATE: N_("upload.refused_duplicate"),
    Refusal.DOWNLOAD_FAILED: N_("upload.refused_download"),
}


class UploadCoordinator:
    def __init__(
        self,
        bot: Bot,
        documents: DocumentService,
        catalog: Catalog,
        i18n: I18n,
        clock: Clock,
        on_document: Callable[[int, int], Awaitable[object]] | None = None,
    ) -> None:
        self._on_document = on_document
        self._bot = bot
        self._documents = documents
        self._catalog = catalog
        self._i18n = i18n
        self._clock = clock
        self._timers: dict[int, asyncio.Task[None]] = {}

    # --- timers ------------------------------------------------------------------------------

    def touch(self, batch_id: int) -> None:
        """A file joined the batch: (re)start its quiet-period timer."""
        self._start_timer(batch_id, self._documents.quiet.total_seconds())

    def _start_timer(self, batch_id: int, delay: float) -> None:
        old = self._timers.get(batch_id)
        if old is not None and old is not asyncio.current_task():
            old.cancel()
        task = asyncio.create_task(self._after(batch_id, max(delay, 0.0)))
        self._timers[batch_id] = task
        task.add_done_callback(lambda t: self._forget(batch_id, t))

    def _forget(self, batch_id: int, task: asyncio.Task[None]) -> None:
        if self._timers.get(batch_id) is task:
            del self._timers[batch_id]

    async def _after(self, batch_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            closed = await self._documents.close_if_quiet(batch_id)
            if closed is not None:
                await self._on_closed(closed)
            else:
                for due_id, due_at in await self._documents.due_for_closing():
                    if due_id == batch_id:  # still collecting: a file came meanwhile
                        self._start_timer(batch_id, self._seconds_until(due_at))
        except Exception as exc:
            # e.g. Telegram refused the report: its description may quote a text
            logger.error(
                "upload batch %s could not be finished", batch_id, exc_info=safe_exc_info(exc)
            )

    def _seconds_until(self, moment: datetime) -> float:
        return (moment - self._clock()).total_seconds() + 0.05

    async def resume(self) -> None:
        """On start: timers for batches still collecting, and interrupted processing.

        A batch still collecting was cut by the stop, and the rest of it (an album's other
        items) is waiting at Telegram: it is delivered only now. So a batch gets a full quiet
        period from the start, however long the restart took, for those items to join it."""
        quiet = self._documents.quiet.total_seconds()
        for batch_id, due_at in await self._documents.due_for_closing():
            self._start_timer(batch_id, max(self._seconds_until(due_at), quiet))
        for batch_id in await self._documents.interrupted():
            await self.finish(batch_id, None)

    async def idle(self) -> None:
        """Wait until no timer is pending (tests, and a graceful stop)."""
        while self._timers:
            await asyncio.gather(*list(self._timers.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in self._timers.values():
            task.cancel()
        await asyncio.gather(*self._timers.values(), return_exceptions=True)
        self._timers.clear()

    # --- closing -----------------------------------------------------------------------------

    async def _on_closed(self, closed: ClosedBatch) -> None:
        if closed.type_code is not None:
            await self.finish(closed.batch_id, None)
            return
        with self._i18n.context(), self._i18n.use_locale(closed.locale):
            count = ngettext("doc.files", "doc.files_plural", closed.files).format(
                count=closed.files
            )
            await self._bot.send_message(
                closed.chat_id,
                _("upload.ask_type").format(files=count),
                reply_markup=kb.types(self._catalog, closed.batch_id, closed.locale),
            )

    async def finish(self, batch_id: int, question: Message | None) -> None:
        """Verify and archive the batch's files, then acknowledge once (editing the type
        question when there was one)."""
        report = await self._documents.process(batch_id, self._download)
        if report is None:
            return
        logger.info(
            "upload batch %s: document %s, %s accepted, %s refused",
            batch_id,
            report.document_id,
            report.accepted,
            len(report.refused),
        )
        if report.document_id is not None and self._on_document is not None:
            await self._on_document(report.patient_id, report.document_id)
        with self._i18n.context(), self._i18n.use_locale(report.locale):
            text = self.render_report(report)
            if question is not None:
                try:
                    await question.edit_text(text)
                    return
                except TelegramBadRequest:
                    pass
            await self._bot.send_message(report.chat_id, text)

    async def _download(self, file_id: str) -> bytes:
        try:
            file = await self._bot.get_file(file_id)
        except TelegramBadRequest as error:
            if "too big" in error.message:
                raise TooBigError from None
            raise
        if file.file_size and file.file_size > self._documents.max_bytes:
            raise TooBigError
        if file.file_path is None:
            raise TooBigError
        buffer = await self._bot.download_file(file.file_path)
        assert buffer is not None
        return buffer.read()

    def render_report(self, report: BatchReport) -> str:
        doc_type = self._catalog.document_type(report.type_code)
        type_name = doc_type.short_name.get(report.locale) if doc_type else report.type_code
        lines = []
        if report.accepted:
            files = ngettext("upload.received", "upload.received_plural", report.accepted)
            lines.append(files.format(count=report.accepted, type=escape(type_name)))
        else:
            lines.append(_("upload.nothing_saved"))
        duplicates = {position: (code, at) for position, code, at in report.duplicate_of}
        for position, why in report.refused:
            if why is Refusal.DUPLICATE and position in duplicates:
                code, at = duplicates[position]
                known = self._catalog.document_type(code)
                lines.append(
                    _("upload.refused_duplicate_of").format(
                        number=position,
                        type=escape(known.short_name.get(report.locale) if known else code),
                        date=format_local_date(at, report.time_zone),
                    )
                )
            else:
                lines.append(
                    _(REFUSALS[why]).format(
                        number=position, messenger=messenger_of(self._bot).label
                    )
                )
        if any(why is not Refusal.DUPLICATE for _pos, why in report.refused):
            lines.append(_("upload.formats_hint").format(limit=self._limit_mb()))
        return "\n".join(lines)

    def _limit_mb(self) -> int:
        return self._documents.max_bytes // (1024 * 1024)
