"""Coordinators' broadcasts: one row per broadcast. Each recipient is an outbox row of the
broadcast's group (``broadcast:<id>``), so delivery, progress and resumption live there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class Broadcast(Base):
    """What is sent (text, or a photo/document by file_id with a caption), to whom (the
    audience as chosen, and how many rows were queued) and where its progress message is."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One per confirmed draft: a second press of "send" finds the broadcast already made.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    author_id: Mapped[int] = mapped_column(BigInteger, index=True)
    content_kind: Mapped[str] = mapped_column(String(16))  # text | photo | document
    text: Mapped[str] = mapped_column(Text, default="")  # HTML, as the patients see it
    file_id: Mapped[str | None] = mapped_column(String(256))
    audience: Mapped[dict[str, Any]]
    total: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # see BroadcastStatus
    progress_chat_id: Mapped[int] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    shown_counts: Mapped[str] = mapped_column(String(64), default="")
    shown_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
