"""A patient is (messenger, user id): which messenger the update being handled came from.

The MAX front end runs the same handlers and services as Telegram's, which speak of a person by
their user id. The messenger travels beside it in a context variable, set for the length of one
update by :class:`bot.messengers.max_adapter.MaxMessengerMiddleware` (Telegram is the default,
so nothing changes for it, nor for the scheduler). The patient lookups by user id read it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum


class Messenger(StrEnum):
    TELEGRAM = "telegram"
    MAX = "max"

    @property
    def label(self) -> str:
        """The messenger's name, as texts to patients say it ("номер вашего {messenger}")."""
        return "MAX" if self is Messenger.MAX else "Telegram"


@dataclass(frozen=True, slots=True)
class Address:
    """Where the update came from: the messenger and the chat (a MAX dialog's chat id is not
    its user's id, so the chat is kept to answer and to deliver later)."""

    messenger: Messenger
    chat_id: int | None = None
    #: The patient's user id on that messenger, when known (the outbox speaks of patients by it).
    user_id: int | None = None


_TELEGRAM = Address(Messenger.TELEGRAM)
_current: ContextVar[Address] = ContextVar("oblako_messenger", default=_TELEGRAM)


def current_address() -> Address:
    return _current.get()


def current_messenger() -> Messenger:
    return _current.get().messenger


def new_patient_identity() -> dict[str, object]:
    """The identity columns of a patient registering now: the messenger, and the chat to reach
    them when it is not their user id (MAX)."""
    address = _current.get()
    chat_id = address.chat_id if address.messenger is not Messenger.TELEGRAM else None
    return {"messenger": address.messenger.value, "chat_id": chat_id}


@contextlib.contextmanager
def serving(
    messenger: Messenger, chat_id: int | None = None, user_id: int | None = None
) -> Iterator[Address]:
    """Everything inside handles one update (or outbox row) of ``messenger`` for ``chat_id``."""
    address = Address(messenger, chat_id, user_id)
    token = _current.set(address)
    try:
        yield address
    finally:
        _current.reset(token)
