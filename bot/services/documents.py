"""Medical documents: batching of incoming files, verification by content, the archive,
listing, and deletion. Files are fetched through a ``Downloader`` given by the caller."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from bot.services.clock import Clock
from bot.services.filetypes import FileKind, Problem, detect, extension_for
from bot.storage.db import SessionFactory
from bot.storage.models import Document, DocumentFile, Patient, UploadBatch, UploadItem

MAX_ALBUM = 10


class TooBigError(Exception):
    """The file is larger than the bot may download."""


Downloader = Callable[[str], Awaitable[bytes]]


class BatchStatus(StrEnum):
    COLLECTING = "collecting"
    AWAITING_TYPE = "awaiting_type"
    PROCESSING = "processing"
    DONE = "done"


class Refusal(StrEnum):
    """Why one file of a batch was not kept."""

    TOO_BIG = "too_big"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    UNSUPPORTED = "unsupported"
    DUPLICATE = "duplicate"
    DOWNLOAD_FAILED = "download_failed"


@dataclass(frozen=True, slots=True)
class IncomingFile:
    message_id: int
    media_group_id: str | None
    file_id: str
    file_unique_id: str
    is_photo: bool
    claimed_size: int | None
    caption: str | None


@dataclass(frozen=True, slots=True)
class Received:
    batch_id: int
    new_batch: bool
    duplicate_update: bool


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    """A batch no one adds to any more: either its type is known or it must be asked."""

    batch_id: int
    chat_id: int
    locale: str
    files: int
    type_code: str | None


@dataclass(frozen=True, slots=True)
class BatchReport:
    batch_id: int
    patient_id: int
    chat_id: int
    locale: str
    type_code: str
    document_id: int | None
    accepted: int
    refused: list[tuple[int, Refusal]] = field(default_factory=list)  # (position, why)
    duplicate_of: list[tuple[int, str, datetime]] = field(default_factory=list)
    time_zone: str = "Europe/Moscow"  # the patient's: the dates in the report are in it


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    id: int
    type_code: str
    created_at: datetime
    files: int


@dataclass(frozen=True, slots=True)
class StoredFileInfo:
    id: int
    kind: FileKind
    telegram_file_id: str
    sent_as_photo: bool
    size: int
    path: Path


@dataclass(frozen=True, slots=True)
class DocumentDetail:
    id: int
    type_code: str
    created_at: datetime
    files: list[StoredFileInfo]


class DocumentService:
    def __init__(
        self,
        sessions: SessionFactory,
        files_dir: Path,
        clock: Clock,
        *,
        max_bytes: int,
        quiet: timedelta,
        type_from_caption: Callable[[str], str | None],
    ) -> None:
        self._sessions = sessions
        self._files_dir = files_dir
        self._clock = clock
        self.max_bytes = max_bytes
        self.quiet = quiet
        self._type_from_caption = type_from_caption

    # --- receiving ---------------------------------------------------------------------------

    async def receive(
        self, patient_id: int, chat_id: int, locale: str, item: IncomingFile
    ) -> Received:
        """Record one incoming file in the patient's open batch (nothing is downloaded yet).

        An album is one batch (keyed by its media_group_id, whatever the order of its items);
        loose files sent within the quiet period of each other are one batch too.
        """
        try:
            return await self._receive(patient_id, chat_id, locale, item)
        except IntegrityError:
            # Another worker opened the album's batch at the same moment: join it.
            return await self._receive(patient_id, chat_id, locale, item)

    async def _receive(
        self, patient_id: int, chat_id: int, locale: str, item: IncomingFile
    ) -> Received:
        now = self._clock()
        caption_type = self._type_from_caption(item.caption) if item.caption else None
        async with self._sessions.begin() as session:
            group = item.media_group_id
            batch = None
            if group is not None:
                batch = await session.scalar(
                    select(UploadBatch).where(
                        UploadBatch.patient_id == patient_id, UploadBatch.media_group_id == group
                    )
                )
                if batch is not None and batch.status != BatchStatus.COLLECTING:
                    # A straggler of an album already closed: it starts a batch of its own.
                    batch, group = None, None
            if group is None and batch is None:
                batch = await session.scalar(
                    select(UploadBatch)
                    .where(
                        UploadBatch.patient_id == patient_id,
                        UploadBatch.media_group_id.is_(None),
                        UploadBatch.status == BatchStatus.COLLECTING,
                        UploadBatch.last_item_at >= now - self.quiet,
                    )
                    .order_by(UploadBatch.id.desc())
                    .limit(1)
                )
            new_batch = batch is None
            if batch is None:
                batch = UploadBatch(
                    patient_id=patient_id,
                    chat_id=chat_id,
                    locale=locale,
                    media_group_id=group,
                    status=BatchStatus.COLLECTING,
                    type_code=caption_type,
                    created_at=now,
                    last_item_at=now,
                )
                session.add(batch)
                await session.flush()
            exists = await session.scalar(
                select(UploadItem.id).where(
                    UploadItem.batch_id == batch.id, UploadItem.message_id == item.message_id
                )
            )
            if exists is not None:  # the same update delivered twice
                return Received(batch.id, new_batch=False, duplicate_update=True)
            session.add(
                UploadItem(
                    batch_id=batch.id,
                    message_id=item.message_id,
                    media_group_id=item.media_group_id,
                    telegram_file_id=item.file_id,
                    telegram_file_unique_id=item.file_unique_id,
                    is_photo=item.is_photo,
                    claimed_size=item.claimed_size,
                    caption_type=caption_type,
                    received_at=now,
                )
            )
            batch.last_item_at = max(batch.last_item_at, now)
            if batch.type_code is None and caption_type is not None:
                batch.type_code = caption_type
            return Received(batch.id, new_batch=new_batch, duplicate_update=False)

    async def close_if_quiet(self, batch_id: int) -> ClosedBatch | None:
        """Close a collecting batch once no file came for the quiet period. Exactly one caller
        wins the close (a conditional update), so a batch is asked about and acknowledged once."""
        now = self._clock()
        async with self._sessions.begin() as session:
            batch = await session.get(UploadBatch, batch_id)
            if batch is None or batch.status != BatchStatus.COLLECTING:
                return None
            if batch.last_item_at > now - self.quiet:
                return None
            target = BatchStatus.PROCESSING if batch.type_code else BatchStatus.AWAITING_TYPE
            claimed = await session.execute(
                update(UploadBatch)
                .where(UploadBatch.id == batch_id, UploadBatch.status == BatchStatus.COLLECTING)
                .values(status=target)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            files = await session.scalar(
                select(func.count()).where(UploadItem.batch_id == batch_id)
            )
            return ClosedBatch(batch.id, batch.chat_id, batch.locale, files or 0, batch.type_code)

    async def due_for_closing(self) -> list[tuple[int, datetime]]:
        """Collecting batches and when they fall quiet (for timers rebuilt after a restart)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(UploadBatch.id, UploadBatch.last_item_at).where(
                    UploadBatch.status == BatchStatus.COLLECTING
                )
            )
            return [(r[0], r[1] + self.quiet) for r in rows]

    async def interrupted(self) -> list[int]:
        """Batches whose processing was cut short by a stop: processed again on start."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(UploadBatch.id).where(UploadBatch.status == BatchStatus.PROCESSING)
            )
            return list(rows)

    async def choose_type(self, patient_id: int, batch_id: int, type_code: str) -> bool:
        """The patient picked the type of a batch. False if it is not theirs or not waiting."""
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(UploadBatch)
                .where(
                    UploadBatch.id == batch_id,
                    UploadBatch.patient_id == patient_id,
                    UploadBatch.status == BatchStatus.AWAITING_TYPE,
                )
                .values(status=BatchStatus.PROCESSING, type_code=type_code)
            )
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def pending_count(self, patient_id: int, batch_id: int) -> int | None:
        async with self._sessions() as session:
            batch = await session.get(UploadBatch, batch_id)
            if batch is None or batch.patient_id != patient_id:
                return None
            return await session.scalar(select(func.count()).where(UploadItem.batch_id == batch_id))

    # --- processing --------------------------------------------------------------------------

    async def process(self, batch_id: int, download: Downloader) -> BatchReport | None:
        """Download, verify by content and archive every file of a batch whose type is known."""
        async with self._sessions() as session:
            batch = await session.get(UploadBatch, batch_id)
            if batch is None or batch.status != BatchStatus.PROCESSING or not batch.type_code:
                return None
            items = list(
                await session.scalars(
                    select(UploadItem)
                    .where(UploadItem.batch_id == batch_id)
                    .order_by(UploadItem.message_id)
                )
            )
            patient_id, chat_id, locale, type_code = (
                batch.patient_id,
                batch.chat_id,
                batch.locale,
                batch.type_code,
            )
            time_zone = await session.scalar(
                select(Patient.time_zone).where(Patient.id == patient_id)
            )

        refused: list[tuple[int, Refusal]] = []
        fetched: list[tuple[int, UploadItem, bytes, FileKind, str]] = []
        for position, item in enumerate(items, start=1):
            if item.claimed_size is not None and item.claimed_size > self.max_bytes:
                refused.append((position, Refusal.TOO_BIG))
                continue
            try:
                data = await download(item.telegram_file_id)
            except TooBigError:
                refused.append((position, Refusal.TOO_BIG))
                continue
            except Exception:  # noqa: BLE001 - reported to the patient, the batch goes on
                refused.append((position, Refusal.DOWNLOAD_FAILED))
                continue
            if len(data) > self.max_bytes:
                refused.append((position, Refusal.TOO_BIG))
                continue
            detection = detect(data)
            if detection.kind is None:
                problem = detection.problem or Problem.UNSUPPORTED
                refused.append((position, Refusal(problem.value)))
                continue
            digest = hashlib.sha256(data).hexdigest()
            fetched.append((position, item, data, detection.kind, digest))

        report = await self._archive(
            batch_id, patient_id, chat_id, locale, type_code, fetched, refused
        )
        if report is None or time_zone is None:
            return report
        return dataclasses.replace(report, time_zone=time_zone)

    async def _archive(
        self,
        batch_id: int,
        patient_id: int,
        chat_id: int,
        locale: str,
        type_code: str,
        fetched: list[tuple[int, UploadItem, bytes, FileKind, str]],
        refused: list[tuple[int, Refusal]],
    ) -> BatchReport | None:
        now = self._clock()
        written: list[Path] = []
        duplicates: list[tuple[int, str, datetime]] = []
        try:
            async with self._sessions.begin() as session:
                # Exactly one processor archives a batch: another worker resuming it on its start
                # (or a second click) finds it claimed here and stays silent.
                claimed = await session.execute(
                    update(UploadBatch)
                    .where(UploadBatch.id == batch_id, UploadBatch.status == BatchStatus.PROCESSING)
                    .values(status=BatchStatus.DONE)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    return None
                known = {
                    row[0]: (row[1], row[2])
                    for row in await session.execute(
                        select(DocumentFile.sha256, Document.type_code, Document.created_at)
                        .join(Document, Document.id == DocumentFile.document_id)
                        .where(
                            DocumentFile.patient_id == patient_id,
                            DocumentFile.sha256.in_([f[4] for f in fetched] or [""]),
                        )
                    )
                }
                fresh: list[tuple[int, UploadItem, bytes, FileKind, str]] = []
                for entry in fetched:
                    position, _item, _data, _kind, digest = entry
                    if digest in known:
                        duplicates.append((position, *known[digest]))
                        refused.append((position, Refusal.DUPLICATE))
                    elif digest in {f[4] for f in fresh}:
                        refused.append((position, Refusal.DUPLICATE))
                    else:
                        fresh.append(entry)
                document_id = None
                if fresh:
                    document = Document(patient_id=patient_id, type_code=type_code, created_at=now)
                    session.add(document)
                    await session.flush()
                    document_id = document.id
                    folder = self._document_dir(patient_id, document.id)
                    for number, (_pos, item, data, kind, digest) in enumerate(fresh, start=1):
                        path = folder / f"{number}{extension_for(kind)}"
                        await asyncio.to_thread(_write_file, path, data)
                        written.append(path)
                        session.add(
                            DocumentFile(
                                document_id=document.id,
                                patient_id=patient_id,
                                position=number,
                                kind=kind.value,
                                sent_as_photo=item.is_photo,
                                telegram_file_id=item.telegram_file_id,
                                telegram_file_unique_id=item.telegram_file_unique_id,
                                size=len(data),
                                sha256=digest,
                                stored_path=str(path.relative_to(self._files_dir)),
                                created_at=now,
                            )
                        )
                await session.execute(
                    update(UploadBatch)
                    .where(UploadBatch.id == batch_id)
                    .values(document_id=document_id)
                )
                await session.execute(delete(UploadItem).where(UploadItem.batch_id == batch_id))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return BatchReport(
            batch_id=batch_id,
            patient_id=patient_id,
            chat_id=chat_id,
            locale=locale,
            type_code=type_code,
            document_id=document_id,
            accepted=len(fetched) - len([r for r in refused if r[1] is Refusal.DUPLICATE]),
            refused=sorted(refused),
            duplicate_of=duplicates,
        )

    def _document_dir(self, patient_id: int, document_id: int) -> Path:
        return self._files_dir / "patients" / str(patient_id) / str(document_id)

    # --- the archive -------------------------------------------------------------------------

    async def list_documents(self, patient_id: int) -> list[DocumentSummary]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Document.id, Document.type_code, Document.created_at, func.count())
                .join(DocumentFile, DocumentFile.document_id == Document.id)
                .where(Document.patient_id == patient_id)
                .group_by(Document.id)
                .order_by(Document.type_code, Document.created_at.desc())
            )
            return [DocumentSummary(r[0], r[1], r[2], r[3]) for r in rows]

    async def get(self, patient_id: int, document_id: int) -> DocumentDetail | None:
        """The document if it is this patient's; None for anyone else's (forged ids)."""
        async with self._sessions() as session:
            document = await session.get(Document, document_id)
            if document is None or document.patient_id != patient_id:
                return None
            files = await session.scalars(
                select(DocumentFile)
                .where(DocumentFile.document_id == document_id)
                .order_by(DocumentFile.position)
            )
            return DocumentDetail(
                id=document.id,
                type_code=document.type_code,
                created_at=document.created_at,
                files=[
                    StoredFileInfo(
                        id=f.id,
                        kind=FileKind(f.kind),
                        telegram_file_id=f.telegram_file_id,
                        sent_as_photo=f.sent_as_photo,
                        size=f.size,
                        path=self._files_dir / f.stored_path,
                    )
                    for f in files
                ],
            )

    async def delete(self, patient_id: int, document_id: int) -> bool:
        """Delete the document's rows and files. False if it is not this patient's."""
        async with self._sessions.begin() as session:
            document = await session.get(Document, document_id)
            if document is None or document.patient_id != patient_id:
                return False
            await session.delete(document)
        await asyncio.to_thread(
            shutil.rmtree, self._document_dir(patient_id, document_id), ignore_errors=True
        )
        return True

    async def types_present(self, patient_id: int) -> set[str]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Document.type_code).where(Document.patient_id == patient_id).distinct()
            )
            return set(rows)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
