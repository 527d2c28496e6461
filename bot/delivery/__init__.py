"""Delivery: every outbox job handler, the Bot API work of the duty-doctor relay, and what they
render. Texts are made here, at delivery, in the recipient's language, from the state the
services report; the services only record what happened and decide what may be sent.

This package imports no router and nothing from ``bot.handlers``: the scheduler process
(``python -m scheduler``) delivers the outbox without building the bot's handlers."""

from __future__ import annotations

from typing import Any, Protocol


class JobRow(Protocol):
    """An outbox row as a job handler reads it (``bot.services.outbox.OutboxJob``)."""

    payload: dict[str, Any]
    chat_id: int
