"""The Bot API work of the chat with the duty doctors: a patient's message copied into their own
topic of the duty chat (or under a header line in a chat without topics), a doctor's answer
signed and sent back, edits mirrored, the patient's card and topic kept, notices posted in the
topic. ``bot.services.relay`` decides (who may write, to whom a message goes, which topic wins);
this module renders and sends. A message that cannot be delivered is always said so, to whoever
sent it: nothing is dropped silently."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import Message, ReplyParameters
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _

from bot.catalog import Catalog
from bot.fsm.states import Relay
from bot.i18n import N_
from bot.keyboards import menu as menu_kb
from bot.messengers.identity import Messenger, serving
from bot.messengers.routing import FileTooBigForMax, bot_for, relaying
from bot.pseudonyms import tg
from bot.services.applications import ConsultationStatus
from bot.services.clock import Clock, local_date
from bot.services.patients import PatientDTO, PatientService
from bot.services.relay import (
    Addressee,
    Direction,
    NewPair,
    PairKind,
    PatientCard,
    PatientRef,
    RelayService,
    ThreadDTO,
    Upcoming,
)
from bot.services.validation import age_on
from bot.views import MOSCOW, polite_name, region_name

log = logging.getLogger("bot.relay")

CAPTIONED = ("photo", "document", "voice", "audio", "video", "animation")
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
STATUS_KEYS = {
    ConsultationStatus.SCHEDULED: N_("relay.status_scheduled"),
    ConsultationStatus.CONFIRMED: N_("relay.status_confirmed"),
}


class DutyDesk:
    """Bot API work of the relay for one update: posting, copying, topics, edits."""

    def __init__(
        self,
        *,
        bot: Bot,
        relay: RelayService,
        patients: PatientService,
        i18n: I18n,
        catalog: Catalog,
        clock: Clock,
        staff_locale: str,
    ) -> None:
        self.bot = bot
        self.relay = relay
        self.patients = patients
        self.i18n = i18n
        self.catalog = catalog
        self.clock = clock
        self.staff_locale = staff_locale

    @contextlib.contextmanager
    def locale(self, locale: str | None = None) -> Iterator[None]:
        """Texts for the doctors (the staff locale) or for a patient (their own)."""
        wanted = locale if locale and locale in self.i18n.available_locales else self.staff_locale
        with self.i18n.use_locale(wanted):
            yield

    # --- patient → doctors -------------------------------------------------------------------

    async def from_patient(self, message: Message, patient: PatientDTO) -> bool:
        """Copy the patient's message to the duty chat; False when there is no duty chat."""
        replied = message.reply_to_message
        inbound = await self.relay.inbound(
            patient.id, replied.message_id if replied is not None else None
        )
        if inbound is None:
            return False
        if not inbound.allowed:
            await message.reply(_("relay.rate_limited").format(limit=self.relay.rate_limit))
            return True
        chat_id = inbound.chat_id
        try:
            pairs_made = await self._post_from_patient(
                message, patient, chat_id, inbound.thread, inbound.reply_to
            )
        except TelegramAPIError as error:
            log.warning(
                "relay: message %s of patient %s not delivered to the duty chat: %s",
                message.message_id,
                patient.id,
                type(error).__name__,
            )
            await message.reply(_("relay.not_delivered"))
            return True
        await self.relay.record(patient.id, chat_id, Direction.IN, pairs_made)
        return True

    async def topic_for(self, patient_id: int) -> int | None:
        """The patient's topic in the duty chat, ready to post in (made, reopened or recreated
        as a patient's message would); None in a chat without topics, or for no patient."""
        found = await self._patient_topic(patient_id)
        return found[1] if found is not None else None

    async def _patient_topic(self, patient_id: int) -> tuple[PatientRef, int | None] | None:
        chat_id = self.relay.duty_chat_id
        if chat_id is None or not await self._is_forum(chat_id):
            return None
        found = await self.relay.topic_of(patient_id)
        if found is None:
            return None
        patient, thread = found
        return patient, await self._open_topic(patient, chat_id, thread)

    async def post_in_topic(self, patient_id: int, text: str) -> int | None:
        """Post a notice about the patient in their topic (the General topic, or the chat
        without topics, when there is none); the message id. A topic deleted by hand is made
        anew, so nothing the doctors should see is lost."""
        chat_id = self.relay.duty_chat_id
        if chat_id is None:
            return None
        found = await self._patient_topic(patient_id)
        thread_id = found[1] if found is not None else None
        try:
            sent = await self.bot.send_message(chat_id, text, message_thread_id=thread_id)
        except TelegramBadRequest as error:
            if thread_id is None or found is None or not _thread_gone(error):
                raise
            thread_id = await self._new_topic(found[0], chat_id, replaces=thread_id, recreated=True)
            sent = await self.bot.send_message(chat_id, text, message_thread_id=thread_id)
        return sent.message_id

    async def _post_from_patient(
        self,
        message: Message,
        patient: PatientDTO,
        chat_id: int,
        thread: ThreadDTO | None,
        reply_to: int | None,
    ) -> list[NewPair]:
        if await self._is_forum(chat_id):
            thread_id = await self._open_topic(patient, chat_id, thread)
            copy = None
            if thread_id is not None:
                copy = await self._copy_to_topic(message, patient, chat_id, thread_id, reply_to)
            if copy is not None:
                return [NewPair(message.message_id, copy)]
        # No topics (or none can be made): a header naming the patient, then the copy.
        with self.locale():
            header_text = _("relay.header").format(
                name=escape(polite_name(patient.full_name)), id=patient.id
            )
        header = await self.bot.send_message(chat_id, header_text)
        copy = await self._copy(message, chat_id, None, reply_to)
        return [
            NewPair(message.message_id, header.message_id, PairKind.HEADER),
            NewPair(message.message_id, copy),
        ]

    async def _copy_to_topic(
        self,
        message: Message,
        patient: PatientDTO,
        chat_id: int,
        thread_id: int,
        reply_to: int | None,
    ) -> int | None:
        """The copy's id in the patient's topic; None: no topic can be made (no rights, or
        the chat is no longer a forum)."""
        try:
            return await self._copy(message, chat_id, thread_id, reply_to)
        except TelegramBadRequest as error:
            if _topic_closed(error):  # closed by hand in Telegram
                await self._reopen(patient.id, chat_id, thread_id)
                return await self._copy(message, chat_id, thread_id, reply_to)
            if not _thread_gone(error):
                raise
        # The topic was deleted: a new one (the old reply targets went with it).
        new_thread = await self._new_topic(patient, chat_id, replaces=thread_id, recreated=True)
        if new_thread is None:
            return None
        return await self._copy(message, chat_id, new_thread, None)

    async def _copy(
        self, message: Message, chat_id: int, thread_id: int | None, reply_to: int | None
    ) -> int:
        result = await self.bot.copy_message(
            chat_id,
            from_chat_id=message.chat.id,
            message_id=message.message_id,
            message_thread_id=thread_id,
            reply_parameters=_reply(reply_to),
        )
        return result.message_id

    async def _is_forum(self, chat_id: int) -> bool:
        known = self.relay.known_forum(chat_id)
        if known is None:
            known = bool((await self.bot.get_chat(chat_id)).is_forum)
            self.relay.remember_forum(chat_id, known)
        return known

    async def _open_topic(
        self, patient: PatientDTO | PatientRef, chat_id: int, thread: ThreadDTO | None
    ) -> int | None:
        """The patient's topic (``thread``, as recorded), ready to write in: made on the first
        message, reopened after /close, made anew when it was deleted. None: topics cannot be
        made here."""
        if thread is None or thread.thread_id is None:
            replaces = thread.thread_id if thread else None
            return await self._new_topic(patient, chat_id, replaces=replaces)
        if not thread.closed:
            return thread.thread_id
        try:
            await self._reopen(patient.id, chat_id, thread.thread_id)
        except TelegramBadRequest as error:
            if not _thread_gone(error):
                raise
            return await self._new_topic(
                patient, chat_id, replaces=thread.thread_id, recreated=True
            )
        await self._post_card(patient.id, chat_id, thread.thread_id)  # a new conversation
        return thread.thread_id

    async def _reopen(self, patient_id: int, chat_id: int, thread_id: int) -> None:
        await self.bot.reopen_forum_topic(chat_id, thread_id)  # "not modified" is success
        await self.relay.set_closed(patient_id, chat_id, closed=False)

    async def _new_topic(
        self,
        patient: PatientDTO | PatientRef,
        chat_id: int,
        *,
        replaces: int | None,
        recreated: bool = False,
    ) -> int | None:
        with self.locale():
            name = _("relay.topic_name").format(name=polite_name(patient.full_name), id=patient.id)
        try:
            topic = await self.bot.create_forum_topic(chat_id, name[:128])
        except TelegramBadRequest as error:
            # No longer a forum, or no right to manage topics: the chat-without-topics way.
            log.warning("relay: no topic in chat %s: %s", tg(chat_id), type(error).__name__)
            self.relay.remember_forum(chat_id, False)
            return None
        thread_id = topic.message_thread_id
        attached = await self.relay.attach_thread(patient.id, chat_id, thread_id, replaces=replaces)
        if attached.thread_id != thread_id and attached.thread_id is not None:
            # Another update of this patient made a topic first: that one is used.
            with contextlib.suppress(TelegramAPIError):
                await self.bot.delete_forum_topic(chat_id, thread_id)
            return attached.thread_id
        await self._post_card(patient.id, chat_id, thread_id, recreated=recreated)
        return thread_id

    async def _post_card(
        self, patient_id: int, chat_id: int, thread_id: int, *, recreated: bool = False
    ) -> None:
        card = await self.relay.card(patient_id)
        if card is None:
            return
        with self.locale():
            text = self.card_text(card) + "\n\n" + _("relay.card_hint")
            if recreated:
                text = _("relay.topic_recreated") + "\n\n" + text
        await self.bot.send_message(chat_id, text, message_thread_id=thread_id)

    # --- doctors → patient -------------------------------------------------------------------

    async def addressee(self, message: Message) -> Addressee | None:
        """The patient a duty-chat message is for (``RelayService.addressee``)."""
        replied = message.reply_to_message
        return await self.relay.addressee(
            message.chat.id,
            replied.message_id if replied is not None else None,
            message.message_thread_id if message.is_topic_message else None,
        )

    async def from_doctor(self, message: Message) -> None:
        found = await self.addressee(message)
        if found is None:
            return
        patient, reply_to = found.patient, found.reply_to
        try:
            with _serving(patient), relaying(message):
                try:
                    pairs = await self._send_to_patient(message, patient, reply_to)
                except FileTooBigForMax:
                    pairs = await self._file_too_big(message, patient, reply_to)
        except TelegramForbiddenError:
            await self.patient_blocked(message, patient)
            return
        except TelegramAPIError as error:
            log.warning(
                "relay: message %s in chat %s not delivered to patient %s: %s",
                message.message_id,
                tg(message.chat.id),
                patient.id,
                type(error).__name__,
            )
            with self.locale():
                await message.reply(
                    _("relay.not_delivered_staff").format(
                        messenger=Messenger(patient.messenger).label
                    )
                )
            return
        await self.relay.record(patient.id, message.chat.id, Direction.OUT, pairs)

    async def patient_blocked(self, message: Message, patient: PatientRef) -> None:
        log.info("relay: patient %s blocked the bot", patient.id)
        await self.patients.mark_unreachable(patient.id, patient.telegram_id)
        with self.locale():
            await message.reply(_("relay.blocked"))

    async def _send_to_patient(
        self, message: Message, patient: PatientRef, reply_to: int | None
    ) -> list[NewPair]:
        to = patient.telegram_id
        header = self._signature(message, patient)
        body = message.html_text
        plain = message.text or message.caption or ""
        if message.text is not None and _fits(header, plain, TEXT_LIMIT):
            sent = await self.bot.send_message(
                to, _signed(header, body), reply_parameters=_reply(reply_to)
            )
            return [NewPair(sent.message_id, message.message_id, PairKind.SIGNED)]
        if message.content_type in CAPTIONED and _fits(header, plain, CAPTION_LIMIT):
            copy = await self.bot.copy_message(
                to,
                from_chat_id=message.chat.id,
                message_id=message.message_id,
                caption=_signed(header, body),
                reply_parameters=_reply(reply_to),
            )
            return [NewPair(copy.message_id, message.message_id, PairKind.SIGNED)]
        # Too long to sign, or no caption possible: the name first, then the message as it is.
        await self.bot.send_message(to, header, reply_parameters=_reply(reply_to))
        copy = await self.bot.copy_message(
            to, from_chat_id=message.chat.id, message_id=message.message_id
        )
        return [NewPair(copy.message_id, message.message_id, PairKind.COPY)]

    async def _file_too_big(
        self, message: Message, patient: PatientRef, reply_to: int | None
    ) -> list[NewPair]:
        """A file that cannot reach a MAX patient: they get the doctor's words and a note
        instead, and the doctor is told (never a silent loss)."""
        with self.locale(patient.locale):
            note = _("relay.file_too_big")
        body = f"{message.html_text}\n\n{note}" if message.caption else note
        sent = await self.bot.send_message(
            patient.telegram_id,
            _signed(self._signature(message, patient), body),
            reply_parameters=_reply(reply_to),
        )
        log.info("relay: file of message %s too big for patient %s", message.message_id, patient.id)
        with self.locale():
            await message.reply(_("relay.file_too_big_staff"))
        return [NewPair(sent.message_id, message.message_id, PairKind.COPY)]

    def _signature(self, message: Message, patient: PatientRef) -> str:
        name = message.from_user.full_name if message.from_user else "—"
        with self.locale(patient.locale):
            return _("relay.doctor_says").format(name=escape(name[:120]))

    # --- edits -------------------------------------------------------------------------------

    async def patient_edited(self, message: Message, patient: PatientDTO) -> None:
        for pair in await self.relay.by_patient_message(patient.id, message.message_id):
            if pair.direction is Direction.IN:
                await self._mirror_edit(pair.chat_id, pair.staff_message_id, message, None)

    async def doctor_edited(self, message: Message) -> None:
        pair = await self.relay.by_staff_message(message.chat.id, message.message_id)
        if pair is None or pair.direction is not Direction.OUT:
            return
        header = self._signature(message, pair.patient) if pair.kind is PairKind.SIGNED else None
        with _serving(pair.patient):
            await self._mirror_edit(
                pair.patient.telegram_id, pair.patient_message_id, message, header
            )

    async def _mirror_edit(
        self, chat_id: int, message_id: int, source: Message, header: str | None
    ) -> None:
        content = _signed(header, source.html_text) if header else source.html_text
        try:
            if source.text is not None:
                await self.bot.edit_message_text(content, chat_id=chat_id, message_id=message_id)
            else:
                await self.bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=content
                )
        except TelegramAPIError as error:
            # Too old, deleted, no caption to edit, blocked: the edit stays where it was made.
            log.info("relay: edit of %s not mirrored: %s", message_id, type(error).__name__)

    # --- staff commands ----------------------------------------------------------------------

    async def command_target(self, message: Message) -> PatientRef | None:
        """The patient a staff command is about; None (and the doctor told where commands
        work) outside a patient's topic and not in reply to a relayed message."""
        found = await self.addressee(message)
        if found is None:
            with self.locale():
                await message.reply(_("relay.command_where"))
            return None
        return found.patient

    async def show_card(self, message: Message, patient: PatientRef) -> None:
        card = await self.relay.card(patient.id)
        if card is None:
            return
        with self.locale():
            await message.reply(self.card_text(card))

    async def show_consultations(self, message: Message, patient: PatientRef) -> None:
        upcoming = await self.relay.upcoming(patient.id)
        with self.locale():
            await message.reply(
                _("relay.consultations_title").format(id=patient.id)
                + "\n"
                + self._consultation_lines(upcoming)
            )

    async def close(self, message: Message, patient: PatientRef, storage: BaseStorage) -> None:
        chat_id = message.chat.id
        thread = await self.relay.thread(patient.id, chat_id)
        await self._leave_relay_mode(patient, storage)
        try:
            with self.locale(patient.locale), _serving(patient):
                await self.bot.send_message(
                    patient.telegram_id, _("relay.closed"), reply_markup=menu_kb.main_menu()
                )
        except TelegramForbiddenError:
            await self.patient_blocked(message, patient)
        with self.locale():
            await message.reply(
                _("relay.closed_staff").format(name=escape(polite_name(patient.full_name)))
            )
        if thread is not None and thread.thread_id is not None and not thread.closed:
            await self.relay.set_closed(patient.id, chat_id, closed=True)
            try:
                await self.bot.close_forum_topic(chat_id, thread.thread_id)
            except TelegramBadRequest as error:
                if not _thread_gone(error):  # ("not modified" is success)
                    raise

    async def _leave_relay_mode(self, patient: PatientRef, storage: BaseStorage) -> None:
        # The dialogue is kept under the bot the patient talks to, in their own chat (a MAX
        # patient's: the MAX bot's id and their dialog's chat id).
        patients_bot = bot_for(self.bot, Messenger(patient.messenger))
        if patients_bot is None:  # MAX is not served by this process: no dialogue to leave
            return
        key = StorageKey(
            bot_id=patients_bot.id,
            chat_id=patient.chat_id or patient.telegram_id,
            user_id=patient.telegram_id,
        )
        state = FSMContext(storage=storage, key=key)
        if await state.get_state() == Relay.chatting.state:
            await state.set_state(None)

    # --- texts for the doctors (called in the staff locale) ----------------------------------

    def card_text(self, card: PatientCard) -> str:
        now = self.clock()
        years = age_on(card.birth_date, local_date(now, card.time_zone))
        local_now = now.astimezone(ZoneInfo(card.time_zone))
        lines = [
            _("relay.card").format(
                id=card.id,
                name=escape(card.full_name),
                age=ngettext("relay.age", "relay.age_plural", years).format(age=years),
                region=escape(region_name(self.catalog, card.region_code, self.staff_locale)),
                local_time=f"{local_now:%H:%M}",
                tz=card.time_zone,
                documents=card.documents,
                consultations=self._consultation_lines(card.upcoming),
            )
        ]
        if card.unreachable:
            lines.append(_("relay.card_unreachable"))
        return "\n".join(lines)

    def _consultation_lines(self, upcoming: tuple[Upcoming, ...]) -> str:
        if not upcoming:
            return _("relay.no_consultations")
        lines = []
        for item in upcoming:
            if item.doctor_name is not None:
                who = _("relay.with_doctor").format(name=escape(item.doctor_name))
            else:
                center = self.catalog.center(item.center_code) if item.center_code else None
                name = center.short_name.get(self.staff_locale) if center else "—"
                who = _("relay.with_center").format(center=escape(name))
            lines.append(
                _("relay.consultation").format(
                    time=_moscow(item.starts_at), who=who, status=_(STATUS_KEYS[item.status])
                )
            )
        return "\n".join(lines)


# --- small helpers -------------------------------------------------------------------------


def _serving(patient: PatientRef) -> contextlib.AbstractContextManager[object]:
    """Calls to a MAX patient go to the MAX bot (bot.messengers.routing)."""
    return serving(Messenger(patient.messenger), patient.chat_id, patient.telegram_id)


def _reply(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


def _signed(header: str | None, body: str) -> str:
    if not header:
        return body
    return f"{header}\n{body}" if body else header


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fits(header: str, plain: str, limit: int) -> bool:
    # The header's markup is not counted by Telegram; a few characters of margin cover it.
    return _utf16(header) + 1 + _utf16(plain) <= limit


def _thread_gone(error: TelegramBadRequest) -> bool:
    return "thread not found" in error.message.lower()


def _topic_closed(error: TelegramBadRequest) -> bool:
    return "topic_closed" in error.message.lower()


def _moscow(moment: datetime) -> str:
    return f"{moment.astimezone(MOSCOW):%d.%m.%Y %H:%M}"
