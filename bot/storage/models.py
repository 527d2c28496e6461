"""SQLAlchemy 2 typed models. Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from bot.messengers.identity import current_messenger

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class Patient(Base):
    """A registered patient. Created only when registration is confirmed (after consent)."""

    __tablename__ = "patients"
    # A patient is (messenger, user id): the same person on Telegram and on MAX is two patients.
    __table_args__ = (UniqueConstraint("messenger", "telegram_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "telegram" or "max" (bot.messengers.identity.Messenger).
    messenger: Mapped[str] = mapped_column(
        String(16), default="telegram", server_default="telegram"
    )
    #: The user's id on their messenger (the column keeps its first name).
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    #: The private chat to reach them when it is not the user id (a MAX dialog); None: the user id.
    chat_id: Mapped[int | None] = mapped_column(BigInteger, default=None)

    @classmethod
    def of_user(cls, user_id: int) -> ColumnElement[bool]:
        """The patient who writes: ``user_id`` on the messenger the update came from."""
        return (cls.messenger == current_messenger().value) & (cls.telegram_id == user_id)

    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str] = mapped_column(String(32))
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    region_code: Mapped[int] = mapped_column(Integer)
    time_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    unreachable_at: Mapped[datetime | None] = mapped_column(default=None)
    consent_version: Mapped[str] = mapped_column(String(32))
    consent_at: Mapped[datetime]
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeletedPatient(Base):
    """Anonymous tombstone of an erased patient: only the former internal id and when."""

    __tablename__ = "deleted_patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    deleted_at: Mapped[datetime]


class FsmRecord(Base):
    """Dialogue state and data of aiogram's FSM, one row per storage key."""

    __tablename__ = "fsm_records"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_connection_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    destiny: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(index=True)


class Document(Base):
    """One document of a patient: one type, one or more files (an album of pages)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    type_code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class DocumentFile(Base):
    """A verified file: the Telegram file_id (for re-sending) next to our own checked copy."""

    __tablename__ = "document_files"
    __table_args__ = (UniqueConstraint("patient_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    sent_as_photo: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram_file_id: Mapped[str] = mapped_column(String(256))
    telegram_file_unique_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class UploadBatch(Base):
    """Files a patient sent together (an album, or files within a few seconds), kept in the
    database so that a restart or another worker finishes the same batch."""

    __tablename__ = "upload_batches"
    __table_args__ = (UniqueConstraint("patient_id", "media_group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    locale: Mapped[str] = mapped_column(String(8))
    media_group_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), index=True
    )  # see services.documents.BatchStatus
    type_code: Mapped[str | None] = mapped_column(String(32))
    document_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    last_item_at: Mapped[datetime]


class UploadItem(Base):
    """One file message of a batch, as Telegram described it (nothing downloaded yet)."""

    __tablename__ = "upload_items"
    __table_args__ = (UniqueConstraint("batch_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("upload_batches.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int] = mapped_column(BigInteger)
    media_group_id: Mapped[str | None] = mapped_column(String(64))
    telegram_file_id: Mapped[str] = mapped_column(String(256))
    telegram_file_unique_id: Mapped[str] = mapped_column(String(64))
    is_photo: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_size: Mapped[int | None] = mapped_column(BigInteger)
    caption_type: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime]


class Application(Base):
    """An application to a federal center (the letter's first path)."""

    __tablename__ = "applications"
    # open_center holds the center code while the application is open, NULL once closed:
    # the unique pair gives "one open application per patient per center" on every backend.
    __table_args__ = (UniqueConstraint("patient_id", "open_center"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    center_code: Mapped[str] = mapped_column(String(32))
    open_center: Mapped[str | None] = mapped_column(String(32))
    disease_group_code: Mapped[str] = mapped_column(String(32))
    diagnosis: Mapped[str] = mapped_column(Text)
    complaints: Mapped[str] = mapped_column(Text)
    missing_at_submit: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(24), index=True)
    status_note: Mapped[str | None] = mapped_column(Text)
    acted_by: Mapped[str | None] = mapped_column(String(128))
    staff_chat_id: Mapped[int] = mapped_column(BigInteger)
    staff_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_documents: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Made from a referral of an attending doctor (the card says so and names who referred).
    # No foreign key: on SQLite adding one would rebuild this table, whose DROP cascades to
    # its children; the referral goes with the patient, and so does the application.
    referral_id: Mapped[int | None] = mapped_column(Integer, default=None)


class ApplicationEvent(Base):
    """One step of an application's timeline, shown to the patient with its time."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime]


class Consultation(Base):
    """An online consultation at a set time, from either path."""

    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=30)
    video_url: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]
    # The duty path: the doctor and the slot. slot_id is unique while the booking is live
    # (a second booking of the same slot fails in the database); cancelling sets it to NULL.
    doctor_id: Mapped[int | None] = mapped_column(
        ForeignKey("duty_doctors.id", ondelete="SET NULL"), index=True, default=None
    )
    slot_id: Mapped[int | None] = mapped_column(
        ForeignKey("duty_slots.id", ondelete="SET NULL"), unique=True, default=None
    )
    cancel_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class Conclusion(Base):
    """The doctor's conclusion after a consultation: text and/or a PDF."""

    __tablename__ = "conclusions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str | None] = mapped_column(Text)
    telegram_file_id: Mapped[str | None] = mapped_column(String(256))
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class DutyDoctor(Base):
    """A duty doctor (the letter's second path): anyone may book them by the schedule."""

    __tablename__ = "duty_doctors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128))
    specialty: Mapped[str] = mapped_column(String(32))  # cardiology | obgyn | general
    about: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class DutySlot(Base):
    """A bookable time of a duty doctor. Booked when a live consultation points at it."""

    __tablename__ = "duty_slots"
    __table_args__ = (UniqueConstraint("doctor_id", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doctor_id: Mapped[int] = mapped_column(
        ForeignKey("duty_doctors.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=30)
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    created_at: Mapped[datetime]


# The tables of other modules register with Base (imported as modules: any of them may be the
# first one imported, e.g. by ``python -m scheduler``).
from bot.storage import audit_models as audit_models  # noqa: E402
from bot.storage import broadcast_models as broadcast_models  # noqa: E402
from bot.storage import inbox_models as inbox_models  # noqa: E402
from bot.storage import link_models as link_models  # noqa: E402
from bot.storage import outbox_models as outbox_models  # noqa: E402
from bot.storage import referral_models as referral_models  # noqa: E402
from bot.storage import relay_models as relay_models  # noqa: E402
from bot.storage import scheduler_models as scheduler_models  # noqa: E402
