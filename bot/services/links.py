"""Moving a patient to their other messenger (Telegram ↔ MAX), on purpose only.

A patient is (messenger, user id): the same person on both is two patients unless they join
them. Here they do it: on the messenger they are registered on, they ask for a one-time code
(short-lived, single-use, only its hash is kept); on the other, they enter it and confirm. Their
record then *moves*: the same patient, with their documents, applications, consultations,
conclusions and pending reminders, now answers to the new messenger's identity, and the old one
is no longer that patient. An account of the other messenger that already has a registered
patient of its own is never merged: the move is refused.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messengers.identity import Messenger, current_address
from bot.pseudonyms import tg
from bot.services.audit import Action, Actor, Role, record
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.services.patients import NotRegisteredError
from bot.storage.db import SessionFactory
from bot.storage.link_models import LinkCode
from bot.storage.models import Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: No 0/O, 1/I: a code is read on one screen and typed on another.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8  # 32**8 ≈ 10**12 codes, each alive for minutes
CODE_TTL = timedelta(minutes=15)
#: The deep link's start parameter: ``move_<code>`` (t.me/<bot>?start=… or max.ru/<bot>?start=…).
START_PREFIX = "move_"


class LinkRefusal(StrEnum):
    UNKNOWN = "unknown"  # no such code: mistyped or made up
    EXPIRED = "expired"
    USED = "used"  # used already, or the patient has moved since it was issued
    SAME_MESSENGER = "same_messenger"  # entered where it was asked for
    REGISTERED_HERE = "registered_here"  # this account has its own patient: never merged


class LinkRefusedError(Exception):
    def __init__(self, reason: LinkRefusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkOffer:
    code: str  # shown as XXXX-XXXX
    expires_at: datetime
    to: Messenger


@dataclass(frozen=True, slots=True)
class Moved:
    """A patient moved: where they were (told there that they left) and who they are now."""

    patient_id: int
    full_name: str
    locale: str | None
    old_messenger: Messenger
    old_user_id: int
    old_chat_id: int  # the old private chat (a MAX dialog, or the Telegram user id)


def other_messenger(messenger: Messenger) -> Messenger:
    return Messenger.MAX if messenger is Messenger.TELEGRAM else Messenger.TELEGRAM


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalized(typed: str) -> str:
    """What a person may type: any case, with spaces or dashes; the deep link's prefix."""
    text = typed.strip()
    if text.startswith(START_PREFIX):
        text = text[len(START_PREFIX) :]
    return "".join(ch for ch in text.upper() if ch not in " -_")


def _rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class LinkService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def issue(self, user_id: int) -> LinkOffer:
        """A new code for the patient writing now (on the messenger of the update); their
        earlier unused codes stop working."""
        messenger = current_address().messenger
        now = self._clock()
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        async with self._sessions.begin() as session:
            patient_id = await session.scalar(select(Patient.id).where(Patient.of_user(user_id)))
            if patient_id is None:
                raise NotRegisteredError
            await session.execute(
                delete(LinkCode).where(
                    LinkCode.patient_id == patient_id, LinkCode.used_at.is_(None)
                )
            )
            session.add(
                LinkCode(
                    code_hash=_hash(code),
                    patient_id=patient_id,
                    messenger=messenger.value,
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )
        log.info("link code issued to patient %s on %s", patient_id, messenger.value)
        return LinkOffer(code, now + CODE_TTL, other_messenger(messenger))

    async def check(self, typed: str, user_id: int) -> str:
        """The first name the code belongs to (for the confirmation), or LinkRefusedError."""
        async with self._sessions() as session:
            _code, patient = await self._usable(session, normalized(typed), user_id)
            return patient.full_name

    async def redeem(self, typed: str, user_id: int, farewell: str) -> Moved:
        """Move the code's patient to the account writing now (``user_id`` in the chat of the
        update). ``farewell`` is queued to their old chat, on the old messenger. Once: a second
        redemption, a race included, is refused as used."""
        try:
            moved = await self._move(normalized(typed), user_id, farewell)
        except IntegrityError:  # this account registered meanwhile: never merged
            raise LinkRefusedError(LinkRefusal.REGISTERED_HERE) from None
        log.info(
            "patient %s moved from %s (%s) to %s (%s)",
            moved.patient_id,
            moved.old_messenger.value,
            tg(moved.old_user_id),
            current_address().messenger.value,
            tg(user_id),
        )
        return moved

    async def _move(self, code_text: str, user_id: int, farewell: str) -> Moved:
        address = current_address()
        now = self._clock()
        async with self._sessions.begin() as session:
            code, patient = await self._usable(session, code_text, user_id)
            used = await session.execute(
                update(LinkCode)
                .where(LinkCode.id == code.id, LinkCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(used) != 1:
                raise LinkRefusedError(LinkRefusal.USED)
            old = Messenger(patient.messenger)
            old_chat = patient.chat_id or patient.telegram_id
            new_chat = address.chat_id if address.messenger is not Messenger.TELEGRAM else None
            moved = await session.execute(
                update(Patient)
                .where(
                    Patient.id == patient.id,
                    Patient.messenger == code.messenger,
                    Patient.telegram_id == code.user_id,
                )
                .values(
                    messenger=address.messenger.value,
                    telegram_id=user_id,
                    chat_id=new_chat,
                    unreachable_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if _rowcount(moved) != 1:
                raise LinkRefusedError(LinkRefusal.USED)
            # What is still to be sent to them (reminders, notices) follows them.
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.patient_id == patient.id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.messenger == old.value,
                    OutboxMessage.chat_id == old_chat,
                )
                .values(messenger=address.messenger.value, chat_id=new_chat or user_id)
                .execution_options(synchronize_session=False)
            )
            goodbye = Outbox.send_message(
                session,
                chat_id=old_chat,
                text=farewell,
                reply_markup={"remove_keyboard": True},
                now=now,
            )
            goodbye.messenger = old.value  # to the old chat, on the old messenger; no patient
            record(
                session,
                Actor(user_id, Role.PATIENT, address.chat_id or user_id),
                Action.MESSENGER_CHANGED,
                now,
                patient_id=patient.id,
                detail=f"{old.value}->{address.messenger.value}",
            )
            return Moved(patient.id, patient.full_name, patient.locale, old, code.user_id, old_chat)

    async def _usable(
        self, session: AsyncSession, code: str, user_id: int
    ) -> tuple[LinkCode, Patient]:
        found = (
            await session.scalar(select(LinkCode).where(LinkCode.code_hash == _hash(code)))
            if len(code) == CODE_LENGTH
            else None
        )
        if found is None:
            raise LinkRefusedError(LinkRefusal.UNKNOWN)
        if found.used_at is not None:
            raise LinkRefusedError(LinkRefusal.USED)
        if found.expires_at <= self._clock():
            raise LinkRefusedError(LinkRefusal.EXPIRED)
        if found.messenger == current_address().messenger.value:
            raise LinkRefusedError(LinkRefusal.SAME_MESSENGER)
        here = await session.scalar(select(Patient.id).where(Patient.of_user(user_id)))
        if here is not None:
            raise LinkRefusedError(LinkRefusal.REGISTERED_HERE)
        patient = await session.get(Patient, found.patient_id)
        if (
            patient is None
            or patient.messenger != found.messenger
            or patient.telegram_id != found.user_id
        ):
            raise LinkRefusedError(LinkRefusal.USED)
        return found, patient
