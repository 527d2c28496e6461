"""A patient's documents posted into a staff chat's topic (the application's card, the
consultation day's heads-up): each captioned with its type and date, in albums of up to ten."""

from __future__ import annotations

from html import escape

from aiogram import Bot
from aiogram.types import FSInputFile, InputMediaDocument, InputMediaPhoto

from bot.catalog import Catalog
from bot.services.documents import DocumentService, StoredFileInfo
from bot.views import MOSCOW, format_local_date


async def send_patient_documents(
    bot: Bot,
    documents: DocumentService,
    catalog: Catalog,
    locale: str,
    patient_id: int,
    chat_id: int,
    thread_id: int | None,
    *,
    only: int | None = None,
    zone: str = MOSCOW.key,
) -> int:
    """Post a patient's documents (by their Telegram file ids) into a staff chat's topic, each
    captioned with its type and date (in ``zone``, the doctors'); an album of up to ten at a
    time. Returns how many."""
    sent = 0
    for summary in await documents.list_documents(patient_id):
        if only is not None and summary.id != only:
            continue
        detail = await documents.get(patient_id, summary.id)
        if detail is None:
            continue
        doc_type = catalog.document_type(detail.type_code)
        name = escape(doc_type.name.get(locale) if doc_type else detail.type_code)
        caption = name + ", " + format_local_date(detail.created_at, zone)
        photos = [f for f in detail.files if f.sent_as_photo]
        others = [f for f in detail.files if not f.sent_as_photo]
        for group, make in ((photos, InputMediaPhoto), (others, InputMediaDocument)):
            for start in range(0, len(group), 10):
                chunk = group[start : start + 10]
                if len(chunk) == 1:
                    if make is InputMediaPhoto:
                        await bot.send_photo(
                            chat_id,
                            sendable(chunk[0]),
                            caption=caption,
                            message_thread_id=thread_id,
                        )
                    else:
                        await bot.send_document(
                            chat_id,
                            sendable(chunk[0]),
                            caption=caption,
                            message_thread_id=thread_id,
                        )
                    continue
                media = [
                    make(media=sendable(f), caption=caption if i == 0 else None)
                    for i, f in enumerate(chunk)
                ]
                await bot.send_media_group(
                    chat_id,
                    media,  # type: ignore[arg-type]
                    message_thread_id=thread_id,
                )
        sent += 1
    return sent


def sendable(info: StoredFileInfo) -> str | FSInputFile:
    """A Telegram file id; a file from a MAX patient (its id is a MAX URL, which Telegram
    cannot use) goes as the verified copy the bot keeps."""
    if info.telegram_file_id.startswith(("http://", "https://")):
        return FSInputFile(info.path)
    return info.telegram_file_id
