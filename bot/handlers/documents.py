"""The "Документы" section: upload (photos, files, albums), list, open, delete."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.types import (
    CallbackQuery,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _

from bot.callbacks import DocAction, DocCb, DocListPageCb, DocMenuAction, DocMenuCb, DocTypeCb
from bot.catalog import Catalog
from bot.delivery.documents import sendable
from bot.fsm.states import ApplicationForm, Documents
from bot.handlers.flow import Flow
from bot.handlers.utils import edit_or_send
from bot.i18n import variants
from bot.keyboards import documents as kb
from bot.keyboards.paging import page_of
from bot.services.documents import DocumentService, IncomingFile, StoredFileInfo
from bot.services.patients import PatientDTO
from bot.uploads import UploadCoordinator
from bot.views import documents_list_text, format_local_date

UNSUPPORTED_CONTENT = (
    F.sticker | F.voice | F.video_note | F.audio | F.video | F.animation | F.location | F.contact
)


def router(i18n: I18n) -> Router:
    """For registered patients (the parent router checks)."""
    r = Router(name="documents")
    r.message.register(section, F.text.in_(variants(i18n, "menu.documents")))
    r.callback_query.register(upload, DocMenuCb.filter(F.action == DocMenuAction.UPLOAD))
    r.callback_query.register(listing, DocMenuCb.filter(F.action == DocMenuAction.LIST))
    r.callback_query.register(listing_page, DocListPageCb.filter())
    r.message.register(
        file_received,
        StateFilter(None, Documents.upload, ApplicationForm.checklist),
        F.photo | F.document,
    )
    r.message.register(unsupported, Documents.upload, UNSUPPORTED_CONTENT)
    r.message.register(text_while_uploading, Documents.upload, F.text)
    r.callback_query.register(type_chosen, DocTypeCb.filter())
    r.callback_query.register(open_document, DocCb.filter(F.action == DocAction.OPEN))
    r.callback_query.register(delete_ask, DocCb.filter(F.action == DocAction.DELETE))
    r.callback_query.register(delete, DocCb.filter(F.action == DocAction.DELETE_YES))
    return r


async def section(
    _message: Message, flow: Flow, patient: PatientDTO, documents: DocumentService
) -> None:
    await flow.state.clear()
    count = len(await documents.list_documents(patient.id))
    await flow.send(_documents_intro(documents), reply_markup=kb.menu(count))


async def upload(query: CallbackQuery, flow: Flow, documents: DocumentService) -> None:
    await flow.state.set_state(Documents.upload)
    prompt = _("doc.upload_prompt").format(limit=_limit_mb(documents))
    if _documents_screen(query):
        await edit_or_send(query, prompt, None)
    else:  # e.g. a doctor's request: what it asks for stays in the chat
        await flow.send(prompt)


async def listing(
    query: CallbackQuery, flow: Flow, documents: DocumentService, patient: PatientDTO
) -> None:
    await _listing(query, flow, documents, patient, 0)


async def listing_page(
    query: CallbackQuery,
    callback_data: DocListPageCb,
    flow: Flow,
    documents: DocumentService,
    patient: PatientDTO,
) -> None:
    await _listing(query, flow, documents, patient, callback_data.page)


# --- receiving files ----------------------------------------------------------------------------


async def file_received(
    message: Message,
    flow: Flow,
    patient: PatientDTO,
    documents: DocumentService,
    uploads: UploadCoordinator,
) -> None:
    incoming = _incoming(message)
    if incoming.claimed_size is not None and incoming.claimed_size > documents.max_bytes:
        await flow.send(_("upload.too_big_now").format(limit=_limit_mb(documents)))
        return
    received = await documents.receive(patient.id, message.chat.id, flow.locale, incoming)
    if not received.duplicate_update:
        uploads.touch(received.batch_id)


async def unsupported(_message: Message, flow: Flow, documents: DocumentService) -> None:
    await flow.send(_("upload.unsupported_content").format(limit=_limit_mb(documents)))


async def text_while_uploading(_message: Message, flow: Flow, documents: DocumentService) -> None:
    await flow.send(_("upload.need_file").format(limit=_limit_mb(documents)))


async def type_chosen(
    query: CallbackQuery,
    callback_data: DocTypeCb,
    flow: Flow,
    patient: PatientDTO,
    documents: DocumentService,
    uploads: UploadCoordinator,
    callback_answer: CallbackAnswer,
) -> None:
    if flow.catalog.document_type(callback_data.type) is None or not await documents.choose_type(
        patient.id, callback_data.batch, callback_data.type
    ):
        callback_answer.text = _("common.stale_button")
        return
    await query.answer(_("upload.saving"))
    callback_answer.disabled = True
    message = query.message if isinstance(query.message, Message) else None
    if message is not None:
        await message.edit_text(_("upload.saving"))
    await uploads.finish(callback_data.batch, message)
    if await flow.state.get_state() == ApplicationForm.checklist.state:
        from bot.handlers.applications import ask

        await ask(flow, ApplicationForm.checklist, None)


# --- one document -------------------------------------------------------------------------------


async def open_document(
    query: CallbackQuery,
    callback_data: DocCb,
    flow: Flow,
    patient: PatientDTO,
    documents: DocumentService,
    callback_answer: CallbackAnswer,
    bot: Bot,
) -> None:
    detail = await documents.get(patient.id, callback_data.id)
    if detail is None:  # not theirs, or deleted meanwhile
        callback_answer.text = _("doc.not_found")
        callback_answer.show_alert = True
        return
    await _send_files(bot, flow.chat_id, detail.files)
    await flow.send(
        _document_title(
            flow.catalog,
            flow.locale,
            detail.type_code,
            format_local_date(detail.created_at, patient.time_zone),
            len(detail.files),
        ),
        reply_markup=kb.document(detail.id),
    )


async def delete_ask(
    query: CallbackQuery,
    callback_data: DocCb,
    flow: Flow,
    patient: PatientDTO,
    documents: DocumentService,
    callback_answer: CallbackAnswer,
) -> None:
    detail = await documents.get(patient.id, callback_data.id)
    if detail is None:
        callback_answer.text = _("doc.not_found")
        callback_answer.show_alert = True
        return
    title = _document_title(
        flow.catalog,
        flow.locale,
        detail.type_code,
        format_local_date(detail.created_at, patient.time_zone),
        len(detail.files),
    )
    await edit_or_send(
        query, _("doc.delete_question").format(title=title), kb.delete_confirm(detail.id)
    )


async def delete(
    query: CallbackQuery,
    callback_data: DocCb,
    patient: PatientDTO,
    documents: DocumentService,
    callback_answer: CallbackAnswer,
) -> None:
    if not await documents.delete(patient.id, callback_data.id):
        callback_answer.text = _("doc.not_found")
        callback_answer.show_alert = True
        return
    await edit_or_send(query, _("doc.deleted"), kb.upload_back())


async def _listing(
    query: CallbackQuery, flow: Flow, documents: DocumentService, patient: PatientDTO, page: int
) -> None:
    """The patient's documents, a page at a time (the text lists the page's documents too)."""
    shown = page_of(await documents.list_documents(patient.id), page)
    tz = patient.time_zone
    text = documents_list_text(list(shown.items), flow.catalog, flow.locale, tz)
    await edit_or_send(query, text, kb.listing(shown, flow.catalog, flow.locale, tz))


def _documents_screen(query: CallbackQuery) -> bool:
    """The button is on the section's own menu or list (replaced by the next screen), not on a
    message with content of its own that carries an upload button."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    own = (
        DocMenuCb.__prefix__ + ":" + DocMenuAction.LIST,
        DocCb.__prefix__ + ":",
        DocListPageCb.__prefix__ + ":",
    )
    return any(
        (button.callback_data or "").startswith(own)
        for row in message.reply_markup.inline_keyboard
        for button in row
    )


def _incoming(message: Message) -> IncomingFile:
    if message.photo:
        photo = message.photo[-1]  # the largest size
        file_id, unique_id, size = photo.file_id, photo.file_unique_id, photo.file_size
    else:
        assert message.document is not None
        document = message.document
        file_id, unique_id, size = document.file_id, document.file_unique_id, document.file_size
    return IncomingFile(
        message_id=message.message_id,
        media_group_id=message.media_group_id,
        file_id=file_id,
        file_unique_id=unique_id,
        is_photo=bool(message.photo),
        claimed_size=size,
        caption=message.caption,
    )


async def _send_files(bot: Bot, chat_id: int, files: list[StoredFileInfo]) -> None:
    """Send a document's files back: photos and files in albums of up to 10 each."""
    photos = [f for f in files if f.sent_as_photo]
    others = [f for f in files if not f.sent_as_photo]
    # (A file sent from MAX goes as the bot's copy: its MAX link means nothing to Telegram,
    # nor does MAX take a file by link. One sent from Telegram goes by its Telegram id; to a
    # MAX chat bot.messengers.routing carries it over.)
    for chunk in _chunks(photos):
        if len(chunk) == 1:
            await bot.send_photo(chat_id, sendable(chunk[0]))
        else:
            await bot.send_media_group(chat_id, [InputMediaPhoto(media=sendable(f)) for f in chunk])
    for chunk in _chunks(others):
        if len(chunk) == 1:
            await bot.send_document(chat_id, sendable(chunk[0]))
        else:
            await bot.send_media_group(
                chat_id, [InputMediaDocument(media=sendable(f)) for f in chunk]
            )


def _chunks(files: list[StoredFileInfo]) -> list[list[StoredFileInfo]]:
    return [files[i : i + 10] for i in range(0, len(files), 10)]


def _document_title(catalog: Catalog, locale: str, code: str, day: str, files: int) -> str:
    doc_type = catalog.document_type(code)
    name = doc_type.name.get(locale) if doc_type else code
    count = ngettext("doc.files", "doc.files_plural", files).format(count=files)
    return _("doc.title").format(type=escape(name), date=day, files=count)


def _limit_mb(documents: DocumentService) -> int:
    return documents.max_bytes // (1024 * 1024)


def _documents_intro(documents: DocumentService) -> str:
    return _("doc.intro").format(limit=_limit_mb(documents))
