"""The update inbox: every update acknowledged to Telegram (or polled from MAX) is a row here first,
so none is lost when a worker dies and none is handled twice when it is delivered again."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored, acknowledged to Telegram, not handled yet (or being handled)
    DONE = "done"  # handled; the payload is gone
    FAILED = "failed"  # the handler raised; the payload is gone too (logged by update id)


class InboxUpdate(Base):
    """One update of a messenger (Telegram's, or MAX's as aiogram-max reads it): update ids and
    users are the messenger's own, so a row is (messenger, update_id). ``payload`` (the raw
    update: personal data) lives only while the update is pending; ``claimed_by``/``claimed_at``
    say which worker handles it and when that worker last said it is alive, so another worker
    takes over only stale claims."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_status_claimed_at", "status", "claimed_at"),)

    messenger: Mapped[str] = mapped_column(
        String(16), primary_key=True, default="telegram", server_default="telegram"
    )
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Updates of one key (the user, else the chat) of one messenger are handled in update_id
    # order; 0 once finished (it is a Telegram or MAX id: personal data).
    order_key: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
