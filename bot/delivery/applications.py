"""Outbox job handlers for applications: the staff card (its forum topic, its documents, its
edits), notices to the patient and to the staff topic. Texts are rendered here, at delivery,
in the recipient's language; the services only record what happened."""

from __future__ import annotations

import logging
import time
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select

from bot.catalog import Catalog
from bot.delivery import JobRow
from bot.delivery.documents import send_patient_documents
from bot.i18n import N_
from bot.keyboards import applications as kb
from bot.services import applications as apps
from bot.services.applications import (
    ApplicationDTO,
    ApplicationService,
    ConsultationStatus,
    Status,
)
from bot.services.clock import Clock, local_date
from bot.services.documents import DocumentService
from bot.services.staff_alerts import NO_TOPIC, StaffAlerts
from bot.services.validation import age_on
from bot.storage.db import SessionFactory
from bot.storage.models import Patient
from bot.storage.referral_models import Referral
from bot.views import MOSCOW, format_local_moment, polite_name, region_name, status_name

logger = logging.getLogger(__name__)


class ApplicationNotifier:
    def __init__(
        self,
        sessions: SessionFactory,
        applications: ApplicationService,
        documents: DocumentService,
        catalog: Catalog,
        i18n: I18n,
        clock: Clock,
        staff_locale: str,
        alerts: StaffAlerts | None = None,
    ) -> None:
        self._alerts = alerts
        self._sessions = sessions
        self._applications = applications
        self._documents = documents
        self._catalog = catalog
        self._i18n = i18n
        self._clock = clock
        self._staff_locale = staff_locale
        self._forum: dict[int, tuple[bool, float]] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            apps.CARD: self.post_card,
            apps.CARD_REFRESH: self.refresh_card,
            apps.PATIENT_NOTICE: self.notify_patient,
            apps.STAFF_NOTICE: self.notify_staff,
        }

    async def _patient(self, patient_id: int) -> Patient | None:
        async with self._sessions() as session:
            return await session.scalar(select(Patient).where(Patient.id == patient_id))

    async def _is_forum(self, bot: Bot, chat_id: int) -> bool:
        cached = self._forum.get(chat_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        chat = await bot.get_chat(chat_id)
        is_forum = bool(chat.is_forum)
        self._forum[chat_id] = (is_forum, time.monotonic() + 300)
        return is_forum

    # --- the card ----------------------------------------------------------------------------

    async def card_text(self, application: ApplicationDTO) -> str:
        patient = await self._patient(application.patient_id)
        center = self._catalog.center(application.center_code)
        group = center.disease_group(application.disease_group_code) if center else None
        present = await self._documents.types_present(application.patient_id)
        locale = self._staff_locale
        now = self._clock()
        lines = [
            _("card.title").format(
                id=application.id,
                center=center.short_name.get(locale) if center else application.center_code,
            ),
        ]
        if patient is not None:
            local_now = now.astimezone(ZoneInfo(patient.time_zone))
            lines.append(
                _("card.patient").format(
                    name=escape(patient.full_name),
                    age=age_on(patient.birth_date, local_date(now, patient.time_zone)),
                    region=escape(region_name(self._catalog, patient.region_code, locale)),
                    local_time=f"{local_now:%H:%M}",
                    tz=patient.time_zone,
                )
            )
            if patient.unreachable_at is not None:
                lines.append(_("card.unreachable"))
        else:
            lines.append(_("card.patient_erased"))
        lines.append(_("card.group").format(group=escape(group.name.get(locale) if group else "—")))
        lines.append(_("card.diagnosis").format(text=escape(application.diagnosis)))
        lines.append(_("card.complaints").format(text=escape(application.complaints)))
        if application.referral_id is not None:
            lines.append(await self._referral_line(application.referral_id))
        lines.append(_("card.checklist"))
        if center is not None:
            for code in center.required_documents_for(application.disease_group_code):
                mark = "✅" if code in present else "❌"
                lines.append(f"{mark} {self._doc_name(code, locale)}")
            for code in center.optional_documents:
                if code in present:
                    lines.append(f"✅ {self._doc_name(code, locale)} " + _("card.optional"))
        if application.missing_at_submit:
            lines.append(_("card.submitted_without"))
        consultation = await self._applications.consultation_for(application.id)
        if consultation is not None and center is not None:
            local = consultation.starts_at.astimezone(ZoneInfo(center.time_zone))
            answer = {
                ConsultationStatus.CONFIRMED: N_("card.time_confirmed"),
                ConsultationStatus.RESCHEDULE_REQUESTED: N_("card.time_other_requested"),
                ConsultationStatus.DONE: N_("card.time_done"),
                ConsultationStatus.NO_SHOW: N_("card.time_no_show"),
            }.get(consultation.status, N_("card.time_unconfirmed"))
            lines.append(
                _("card.consultation").format(
                    time=f"{local:%d.%m.%Y %H:%M}", tz=center.time_zone, answer=_(answer)
                )
            )
        lines.append("")
        lines.append(self._status_line(application))
        return "\n".join(lines)

    async def _referral_line(self, referral_id: int) -> str:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Referral.referring_organization, Referral.referring_doctor).where(
                        Referral.id == referral_id
                    )
                )
            ).first()
        if found is None:
            return _("card.by_referral_unknown")
        organization, doctor = found
        return _("card.by_referral").format(
            organization=escape(organization), doctor=escape(doctor or "—")
        )

    def _doc_name(self, code: str, locale: str) -> str:
        doc_type = self._catalog.document_type(code)
        return escape(doc_type.name.get(locale) if doc_type else code)

    def _status_line(self, application: ApplicationDTO) -> str:
        text = _("card.status").format(status=status_name(application.status))
        if application.acted_by:
            text += " — " + escape(application.acted_by)
        if application.status_note:
            text += "\n" + _("card.note").format(note=escape(application.status_note))
        return text

    async def post_card(self, row: JobRow, bot: Bot) -> int | None:
        application = await self._applications.get(int(row.payload["application_id"]))
        if application.card_message_id is not None:
            return application.card_message_id  # already posted (a repeated job)
        with self._i18n.context(), self._i18n.use_locale(self._staff_locale):
            thread_id = None
            if await self._is_forum(bot, application.staff_chat_id):
                patient = await self._patient(application.patient_id)
                short = polite_name(patient.full_name) if patient else "—"
                thread_id = await self._new_topic(
                    bot,
                    application,
                    _("card.topic").format(id=application.id, name=short)[:128],
                )
            text = await self.card_text(application)
            card = await bot.send_message(
                application.staff_chat_id,
                text,
                message_thread_id=thread_id,
                reply_markup=kb.staff_card(application),
            )
            await self._applications.set_card(application.id, thread_id, card.message_id)
            await self._send_documents(bot, application, thread_id, None)
            return card.message_id

    async def _new_topic(self, bot: Bot, application: ApplicationDTO, name: str) -> int | None:
        """The card's topic; None when none can be made (no right to manage topics, topics
        turned off): the card then goes into the chat itself and the coordinators are told."""
        chat_id = application.staff_chat_id
        try:
            topic = await bot.create_forum_topic(chat_id, name)
        except TelegramBadRequest:
            logger.warning(
                "card %s: no topic in chat %s; posted without one", application.id, chat_id
            )
            self._forum[chat_id] = (False, time.monotonic() + 60)
            if self._alerts is not None:
                await self._alerts.report(chat_id, NO_TOPIC, application_id=application.id)
            return None
        return topic.message_thread_id

    async def _send_documents(
        self, bot: Bot, application: ApplicationDTO, thread_id: int | None, only: int | None
    ) -> None:
        center = self._catalog.center(application.center_code)
        await send_patient_documents(
            bot,
            self._documents,
            self._catalog,
            self._staff_locale,
            application.patient_id,
            application.staff_chat_id,
            thread_id,
            only=only,
            zone=center.time_zone if center else MOSCOW.key,  # the doctors read the dates
        )

    async def refresh_card(self, row: JobRow, bot: Bot) -> int | None:
        application = await self._applications.get(int(row.payload["application_id"]))
        if application.card_message_id is None:
            return None  # the card job posts the current state when it runs
        with self._i18n.context(), self._i18n.use_locale(self._staff_locale):
            await bot.edit_message_text(  # the same state again: "not modified" is success
                await self.card_text(application),
                chat_id=application.staff_chat_id,
                message_id=application.card_message_id,
                reply_markup=kb.staff_card(application),
            )
        return application.card_message_id

    # --- notices -----------------------------------------------------------------------------

    async def notify_staff(self, row: JobRow, bot: Bot) -> int | None:
        application = await self._applications.get(int(row.payload["application_id"]))
        event = str(row.payload["event"])
        with self._i18n.context(), self._i18n.use_locale(self._staff_locale):
            if event == "documents_added":
                text = _("staff.documents_added")
            elif event == "documents_resent":
                text = _("staff.documents_resent")
            elif event == "patient_confirmed":
                text = _("staff.patient_confirmed")
            elif event == "patient_cancelled":
                text = _("staff.patient_cancelled").format(
                    reason=escape(application.status_note or "—")
                )
            else:
                text = _("staff.patient_wants_other_time")
            message = await bot.send_message(
                application.staff_chat_id,
                _("staff.notice").format(id=application.id, text=text),
                message_thread_id=application.staff_thread_id,
            )
            if event == "documents_added":
                await self._send_documents(
                    bot, application, application.staff_thread_id, int(row.payload["document_id"])
                )
            elif event == "documents_resent":
                await self._send_documents(bot, application, application.staff_thread_id, None)
            return message.message_id

    async def notify_patient(self, row: JobRow, bot: Bot) -> int | None:
        application = await self._applications.get(int(row.payload["application_id"]))
        patient = await self._patient(application.patient_id)
        if patient is None:
            return None
        locale = patient.locale or self._staff_locale
        status = Status(row.payload["status"])
        center = self._catalog.center(application.center_code)
        center_name = center.short_name.get(locale) if center else application.center_code
        with self._i18n.context(), self._i18n.use_locale(locale):
            header = _("notice.header").format(id=application.id, center=escape(center_name))
            markup = None
            if status is Status.TIME_ASSIGNED:
                consultation = await self._applications.consultation_for(application.id)
                if consultation is None:
                    return None
                body = _("notice.time_assigned").format(
                    local=format_local_moment(consultation.starts_at, patient.time_zone),
                    moscow=f"{consultation.starts_at.astimezone(MOSCOW):%d.%m.%Y %H:%M}",
                    url=consultation.video_url,
                )
                markup = kb.time_answer(consultation.id)
            elif status is Status.DOCUMENTS_REQUESTED:
                names = ", ".join(
                    self._doc_name(code, locale) for code in application.requested_documents
                )
                body = _("notice.documents_requested").format(documents=names or "—")
                if application.status_note:
                    body += "\n" + _("notice.comment").format(note=escape(application.status_note))
                markup = kb.upload_button()
            elif status is Status.COMPLETED:
                conclusion = await self._applications.conclusion(
                    patient.id, int(row.payload["object_id"])
                )
                body = _("notice.completed").format(author=escape(conclusion.author))
                if conclusion.text:
                    body += "\n\n" + escape(conclusion.text)
                message = await bot.send_message(patient.telegram_id, header + "\n" + body)
                if conclusion.telegram_file_id:
                    await bot.send_document(patient.telegram_id, conclusion.telegram_file_id)
                return message.message_id
            else:
                key = {
                    Status.UNDER_REVIEW: N_("notice.under_review"),
                    Status.DECLINED: N_("notice.declined"),
                    Status.INVITED: N_("notice.invited"),
                }.get(status, N_("notice.status"))
                body = _(key).format(
                    note=escape(application.status_note or "—"), status=status_name(status)
                )
            message = await bot.send_message(
                patient.telegram_id, header + "\n" + body, reply_markup=markup
            )
            return message.message_id
