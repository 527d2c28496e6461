"""Keyboards of the "Документы" section."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.callbacks import DocAction, DocCb, DocListPageCb, DocMenuAction, DocMenuCb, DocTypeCb
from bot.catalog import Catalog
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.keyboards.paging import Page, add_pager
from bot.services.documents import DocumentSummary
from bot.views import format_local_date


def menu(count: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.doc_upload"), callback_data=DocMenuCb(action=DocMenuAction.UPLOAD))
    kb.button(
        text=_("btn.doc_list").format(count=count),
        callback_data=DocMenuCb(action=DocMenuAction.LIST),
    )
    kb.adjust(1)
    return kb.as_markup()


def types(catalog: Catalog, batch_id: int, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for doc_type in catalog.document_types:
        kb.button(
            text=doc_type.short_name.get(locale),
            callback_data=DocTypeCb(batch=batch_id, type=doc_type.code),
        )
    kb.adjust(2)
    return kb.as_markup()


def listing(
    shown: Page[DocumentSummary], catalog: Catalog, locale: str, tz: str
) -> InlineKeyboardMarkup:
    """One page of the patient's documents, then the upload button."""
    kb = InlineKeyboardBuilder()
    for doc in shown.items:
        doc_type = catalog.document_type(doc.type_code)
        name = doc_type.short_name.get(locale) if doc_type else doc.type_code
        files = ngettext("doc.files", "doc.files_plural", doc.files).format(count=doc.files)
        kb.button(
            text=f"{name} · {format_local_date(doc.created_at, tz)} · {files}",
            callback_data=DocCb(action=DocAction.OPEN, id=doc.id),
        )
    pager = add_pager(kb, shown, lambda p: DocListPageCb(page=p))
    kb.button(text=_("btn.doc_upload"), callback_data=DocMenuCb(action=DocMenuAction.UPLOAD))
    kb.adjust(*([1] * len(shown.items)), *pager, 1)
    return kb.as_markup()


def document(document_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.doc_delete"), callback_data=DocCb(action=DocAction.DELETE, id=document_id)
    )
    kb.button(text=_("btn.doc_back"), callback_data=DocMenuCb(action=DocMenuAction.LIST))
    kb.adjust(1)
    return kb.as_markup()


def delete_confirm(document_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.doc_delete_yes"),
        callback_data=DocCb(action=DocAction.DELETE_YES, id=document_id),
    )
    kb.button(text=_("btn.delete_no"), callback_data=DocCb(action=DocAction.OPEN, id=document_id))
    kb.adjust(1)
    return kb.as_markup()


def upload_back() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.doc_back"), callback_data=DocMenuCb(action=DocMenuAction.LIST))
    return kb.as_markup()
