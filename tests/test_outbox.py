"""The outbox: rows written in the caller's transaction, delivered once, under the limits,
through the real aiogram Bot against the fake Bot API, with a clock the tests move by hand."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetMe
from aiogram.types import BufferedInputFile
from sqlalchemy import Boolean, Date, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.storage.outbox_models  # noqa: F401 - the outbox table is mapped before use
from bot.app import create_bot
from bot.services.outbox import Limits, Outbox, OutboxJob, OutboxSender
from bot.storage.db import SessionFactory, create_engine, create_session_factory, migrate
from bot.storage.models import UTCDateTime
from bot.storage.outbox_models import OutboxMessage
from fakegram.models import ApiCall
from fakegram.server import FakeTelegram
from scheduler import build_scheduler, stop_scheduler
from tests.conftest import FrozenClock, make_settings

_chat_ids = itertools.count(810_000_001)
_group_ids = itertools.count(1)

# Generous limits for tests that are not about the limits.
FAST = Limits(global_per_second=1000, per_chat_per_second=1000, per_group_per_minute=100_000)


class Rig:
    """A database migrated to head, a real Bot pointed at the fake, a frozen clock."""

    def __init__(self, fake: FakeTelegram, url: str, engine: AsyncEngine, bot: Bot) -> None:
        self.fake = fake
        self.url = url
        self.engine = engine
        self.sessions: SessionFactory = create_session_factory(engine)
        self.bot = bot
        self.clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
        self.blocked: list[tuple[int | None, int]] = []

    def sender(self, limits: Limits = FAST, sessions: SessionFactory | None = None) -> OutboxSender:
        async def on_blocked(patient_id: int | None, chat_id: int) -> None:
            self.blocked.append((patient_id, chat_id))

        return OutboxSender(
            sessions or self.sessions, self.bot, self.clock, limits, on_blocked=on_blocked
        )

    def user(self) -> int:
        chat_id = next(_chat_ids)
        self.fake.register_user({"id": chat_id, "is_bot": False, "first_name": "Пациент"})
        return chat_id

    def group(self) -> int:
        chat_id = -1003500000000 - next(_group_ids)  # apart from other tests' chats
        self.fake.add_chat({"id": chat_id, "type": "supergroup", "title": "Врачи"})
        return chat_id

    async def send(self, chat_id: int, text_: str, **kwargs: Any) -> int:
        async with self.sessions.begin() as session:
            row = Outbox.send_message(
                session, chat_id=chat_id, text=text_, now=self.clock(), **kwargs
            )
            await session.flush()
            return row.id

    async def row(self, row_id: int) -> OutboxMessage:
        async with self.sessions() as session:
            found = await session.get(OutboxMessage, row_id)
            assert found is not None
            return found

    async def statuses(self, *row_ids: int) -> list[str]:
        return [(await self.row(row_id)).status for row_id in row_ids]

    async def patient(self, telegram_id: int) -> int:
        """A registered patient (plain SQL: only the columns of the first migration)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "INSERT INTO patients (telegram_id, full_name, birth_date, phone,"
                    " phone_verified, region_code, time_zone, consent_version, consent_at,"
                    " registered_at, updated_at) VALUES (:tid, 'Иванова Анна', :birth,"
                    " '+79140000000', :verified, 38, 'Asia/Irkutsk', 'v1', :now, :now, :now)"
                    " RETURNING id"
                ).bindparams(
                    bindparam("birth", type_=Date()),
                    bindparam("verified", type_=Boolean()),
                    bindparam("now", type_=UTCDateTime()),
                ),
                {
                    "tid": telegram_id,
                    "birth": date(1961, 9, 7),
                    "verified": True,
                    "now": self.clock(),
                },
            )
            return int(result.scalar_one())


def delivered(fake: FakeTelegram, method: str, chat_id: int) -> list[ApiCall]:
    return [call for call in fake.calls(method, chat_id) if call.ok]


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [str(call.params["text"]) for call in delivered(fake, "sendMessage", chat_id)]


@pytest.fixture(scope="module")
async def shared_bot(
    fake: FakeTelegram, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bot]:
    """One Bot for the module: closing its HTTP session takes a quarter of a second."""
    bot_ = create_bot(make_settings(fake.base_url, tmp_path_factory.mktemp("outbox-bot")))
    yield bot_
    await bot_.session.close()


@pytest.fixture
async def rig(fake: FakeTelegram, database_url: str, shared_bot: Bot) -> AsyncIterator[Rig]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield Rig(fake, database_url, engine, shared_bot)
    finally:
        await engine.dispose()


# 1 ---------------------------------------------------------------------------------------
async def test_rolled_back_rows_are_never_sent_committed_rows_once(rig: Rig) -> None:
    chat = rig.user()

    async def change_that_fails() -> None:
        async with rig.sessions.begin() as session:
            Outbox.send_message(session, chat_id=chat, text="отменено", now=rig.clock())
            await session.flush()
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    row_id = await rig.send(chat, "Заявка принята")
    sender = rig.sender()
    assert await sender.deliver_due() == 1
    rig.clock.advance(seconds=10)
    assert await sender.deliver_due() == 0
    assert texts(rig.fake, chat) == ["Заявка принята"]
    row = await rig.row(row_id)
    assert row.status == "sent"
    assert row.attempts == 1
    assert row.sent_at == rig.clock.now - timedelta(seconds=10)
    assert row.result_message_id == rig.fake.messages(chat)[-1].message_id


# 2 ---------------------------------------------------------------------------------------
async def test_concurrent_senders_never_send_a_row_twice(rig: Rig) -> None:
    chats = [rig.user() for _ in range(50)]
    async with rig.sessions.begin() as session:
        for n, chat in enumerate(chats):
            Outbox.send_message(session, chat_id=chat, text=f"Рассылка {n}", now=rig.clock())
    other_engine = create_engine(rig.url)  # "a 2nd process"
    try:
        one = rig.sender()
        two = rig.sender(sessions=create_session_factory(other_engine))
        counts = await asyncio.gather(one.deliver_due(), two.deliver_due(), one.deliver_due())
    finally:
        await other_engine.dispose()
    assert sum(counts) == 50
    for chat in chats:
        assert len(rig.fake.calls("sendMessage", chat)) == 1
    async with rig.sessions() as session:
        statuses = (await session.scalars(select(OutboxMessage.status))).all()
    assert statuses == ["sent"] * 50


# 3 ---------------------------------------------------------------------------------------
async def test_429_waits_retry_after_then_delivers_everything_in_order(rig: Rig) -> None:
    chat, other = rig.user(), rig.user()
    first = await rig.send(chat, "первое")
    second = await rig.send(chat, "второе")
    elsewhere = await rig.send(other, "в другой чат")
    rig.fake.fail_next("sendMessage", error_code=429, retry_after=5, chat_id=chat)
    sender = rig.sender()

    assert await sender.deliver_due() == 1  # the other chat is not held up
    row = await rig.row(first)
    assert (row.status, row.last_error, row.attempts) == ("pending", "retry_after", 0)
    assert row.due_at == rig.clock.now + timedelta(seconds=5)
    rig.clock.advance(seconds=4.9)
    assert await sender.deliver_due() == 0
    assert len(rig.fake.calls("sendMessage", chat)) == 1  # only the refused one
    # a new sender (a restart) holds the chat too: it knows from the database
    assert await rig.sender().deliver_due() == 0
    rig.clock.advance(seconds=0.1)
    assert await sender.deliver_due() == 2
    assert texts(rig.fake, chat) == ["первое", "второе"]
    assert await rig.statuses(first, second, elsewhere) == ["sent"] * 3
    assert (await rig.row(first)).attempts == 1  # the 429 did not use up an attempt


async def test_429_without_a_chat_pauses_all_delivery(rig: Rig) -> None:
    chat, other = rig.user(), rig.user()

    async def asks_first(row: OutboxJob, bot: Bot) -> int | None:
        await bot.get_me()  # no chat in this call
        return None

    sender = rig.sender()
    sender.register("asks_first", asks_first)
    async with rig.sessions.begin() as session:
        Outbox.job(session, kind="asks_first", payload={}, chat_id=chat, now=rig.clock())
    later = await rig.send(other, "потом", due_at=rig.clock() + timedelta(seconds=1))
    rig.fake.fail_next("getMe", error_code=429, retry_after=3)
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=2)
    assert await sender.deliver_due() == 0  # "later" is due, but everything waits
    assert await rig.statuses(later) == ["pending"]
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 2
    assert texts(rig.fake, other) == ["потом"]


async def test_each_messengers_bot_keeps_its_own_limits_and_pauses(rig: Rig) -> None:
    """Telegram and MAX are two bots with limits of their own, and their chat ids are two name
    spaces: a MAX dialog with the id of a Telegram chat is another chat, and a MAX 429 (or a
    MAX token refused) holds no Telegram row."""
    chat = rig.user()
    done: list[tuple[str, int, str]] = []
    refuse = {"max": 1}

    async def note(row: OutboxJob, bot: Bot) -> int | None:
        if refuse.get(row.messenger, 0) > 0:
            refuse[row.messenger] -= 1
            raise TelegramRetryAfter(method=GetMe(), message="Too Many Requests", retry_after=30)
        done.append((row.messenger, row.chat_id, str(row.payload["n"])))
        return None

    async def add(n: str, messenger: str) -> None:
        async with rig.sessions.begin() as session:
            row = Outbox.job(session, kind="note", payload={"n": n}, chat_id=chat, now=rig.clock())
            row.messenger = messenger

    sender = rig.sender(Limits(global_per_second=1))
    sender.register("note", note)
    await add("max-1", "max")
    await add("tg-1", "telegram")
    # the MAX row meets a 429 without a chat: MAX waits, Telegram's row goes in the same tick
    assert await sender.deliver_due() == 1
    assert done == [("telegram", chat, "tg-1")]
    await add("tg-2", "telegram")
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 1  # Telegram goes on while MAX is paused
    rig.clock.advance(seconds=29)
    await add("tg-3", "telegram")
    # MAX is back: one row of each in one second, though each bot may send one a second and
    # both rows are to "chat" (one per second per chat)
    assert await sender.deliver_due() == 2
    assert sorted(done[2:]) == [("max", chat, "max-1"), ("telegram", chat, "tg-3")]


# 4 ---------------------------------------------------------------------------------------
async def test_403_fails_the_row_reports_the_patient_and_cancels_the_chat(rig: Rig) -> None:
    chat, other = rig.user(), rig.user()
    patient_id = await rig.patient(chat)
    notice = await rig.send(chat, "Время назначено", patient_id=patient_id)
    after = await rig.send(chat, "Ещё", patient_id=patient_id)
    reminder = await rig.send(
        chat, "Напоминание", patient_id=patient_id, due_at=rig.clock() + timedelta(days=1)
    )
    unrelated = await rig.send(other, "Другому")
    rig.fake.block(chat)
    try:
        assert await rig.sender().deliver_due() == 1
    finally:
        rig.fake.unblock(chat)
    assert rig.blocked == [(patient_id, chat)]
    assert await rig.statuses(notice, after, reminder, unrelated) == [
        "failed",
        "cancelled",
        "cancelled",
        "sent",
    ]
    assert (await rig.row(notice)).last_error == "blocked"
    rig.clock.advance(days=2)
    assert await rig.sender().deliver_due() == 0


# 5 ---------------------------------------------------------------------------------------
async def test_network_drop_is_retried_with_backoff(rig: Rig) -> None:
    chat = rig.user()
    row_id = await rig.send(chat, "Ссылка на видео")
    rig.fake.network_drop_next("sendMessage", times=2, chat_id=chat)
    sender = rig.sender()
    assert await sender.deliver_due() == 0
    row = await rig.row(row_id)
    assert (row.status, row.last_error, row.attempts) == ("pending", "network", 1)
    assert row.due_at == rig.clock.now + timedelta(seconds=2)
    rig.clock.advance(seconds=2)
    assert await sender.deliver_due() == 0  # dropped again: now 4 s
    assert (await rig.row(row_id)).due_at == rig.clock.now + timedelta(seconds=4)
    rig.clock.advance(seconds=3.9)
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=0.1)
    assert await sender.deliver_due() == 1
    assert texts(rig.fake, chat) == ["Ссылка на видео"]
    row = await rig.row(row_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


async def test_network_errors_give_up_after_max_attempts(rig: Rig) -> None:
    chat = rig.user()
    row_id = await rig.send(chat, "Не дойдёт")
    rig.fake.network_drop_next("sendMessage", times=2, chat_id=chat)
    sender = rig.sender(Limits(max_attempts=2, base_backoff=1))
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 0
    row = await rig.row(row_id)
    assert (row.status, row.last_error, row.attempts) == ("failed", "network", 2)


# 6 ---------------------------------------------------------------------------------------
async def test_per_chat_limit_one_per_second(rig: Rig) -> None:
    chat = rig.user()
    for n in range(3):
        await rig.send(chat, f"сообщение {n}")
    sender = rig.sender(Limits())
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=0.9)
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=0.1)
    assert await sender.deliver_due() == 1
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 1
    assert texts(rig.fake, chat) == ["сообщение 0", "сообщение 1", "сообщение 2"]


async def test_global_limit(rig: Rig) -> None:
    chats = [rig.user() for _ in range(5)]
    for chat in chats:
        await rig.send(chat, "всем")
    sender = rig.sender(Limits(global_per_second=2))
    assert await sender.deliver_due() == 2
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 2
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 1
    assert [len(texts(rig.fake, chat)) for chat in chats] == [1] * 5


async def test_group_limit_per_minute(rig: Rig) -> None:
    group = rig.group()
    for n in range(3):
        await rig.send(group, f"карточка {n}")
    sender = rig.sender(Limits(per_chat_per_second=100, per_group_per_minute=2))
    assert await sender.deliver_due() == 2
    rig.clock.advance(seconds=30)
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=30)
    assert await sender.deliver_due() == 1
    assert texts(rig.fake, group) == ["карточка 0", "карточка 1", "карточка 2"]


# 7 ---------------------------------------------------------------------------------------
async def test_per_chat_order_survives_a_retry(rig: Rig) -> None:
    chat = rig.user()
    for n in (1, 2, 3):
        await rig.send(chat, f"шаг {n}")
    rig.fake.network_drop_next("sendMessage", chat_id=chat)
    sender = rig.sender(Limits(per_chat_per_second=100))
    assert await sender.deliver_due() == 0  # step 1 dropped; 2 and 3 must not overtake it
    await rig.send(chat, "шаг 4")
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 0
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 4
    assert texts(rig.fake, chat) == ["шаг 1", "шаг 2", "шаг 3", "шаг 4"]


async def test_rows_go_by_due_time_then_by_writing_order(rig: Rig) -> None:
    chat = rig.user()
    await rig.send(chat, "через минуту", due_at=rig.clock() + timedelta(minutes=1))
    await rig.send(chat, "сейчас")
    await rig.send(chat, "тоже сейчас")
    sender = rig.sender(Limits(per_chat_per_second=100))
    assert await sender.deliver_due() == 2
    rig.clock.advance(minutes=1)
    assert await sender.deliver_due() == 1
    assert texts(rig.fake, chat) == ["сейчас", "тоже сейчас", "через минуту"]


# 8 ---------------------------------------------------------------------------------------
async def test_dedup_key_makes_the_second_add_a_no_op(rig: Rig) -> None:
    chat = rig.user()
    async with rig.sessions.begin() as session:
        plain = Outbox.send_message(session, chat_id=chat, text="до", now=rig.clock())
        first = Outbox.job(
            session,
            kind="card",
            payload={"n": 1},
            chat_id=chat,
            dedup_key="card:7",
            now=rig.clock(),
        )
        again = Outbox.job(
            session,
            kind="card",
            payload={"n": 2},
            chat_id=chat,
            dedup_key="card:7",
            now=rig.clock(),
        )
        after = Outbox.send_message(session, chat_id=chat, text="после", now=rig.clock())
        await session.flush()
        assert plain.id < first.id < after.id  # written in the order of the calls
        assert again.id == first.id
        # the transaction goes on: it reads and writes as usual
        assert await session.scalar(
            select(OutboxMessage.payload).where(OutboxMessage.dedup_key == "card:7")
        ) == {"n": 1}
    async with rig.sessions.begin() as session:  # a later transaction, same key
        repeat = Outbox.job(
            session,
            kind="card",
            payload={"n": 3},
            chat_id=chat,
            dedup_key="card:7",
            now=rig.clock(),
        )
        Outbox.send_message(session, chat_id=chat, text="ещё", now=rig.clock())
    assert repeat.id == first.id
    async with rig.sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [(r.kind, r.payload.get("text") or r.payload.get("n")) for r in rows] == [
        ("api", "до"),
        ("card", 1),
        ("api", "после"),
        ("api", "ещё"),
    ]


# 9 ---------------------------------------------------------------------------------------
async def test_cancel_group_and_move_group(rig: Rig) -> None:
    chat = rig.user()
    start = rig.clock()
    early = await rig.send(chat, "за сутки", group_key="reminder:12:24h", due_at=start)
    day = await rig.send(
        chat, "за час", group_key="reminder:12:24h", due_at=start + timedelta(hours=23)
    )
    other = await rig.send(chat, "другое", group_key="reminder:13:24h", due_at=start)
    assert await rig.sender().deliver_due() == 2  # "early" went out, so did "other"
    async with rig.sessions.begin() as session:
        assert await Outbox.move_group(session, "reminder:12:24h", timedelta(hours=2)) == 1
    assert (await rig.row(day)).due_at == start + timedelta(hours=25)
    assert (await rig.row(early)).due_at == start  # sent rows stay as they were
    async with rig.sessions.begin() as session:
        assert await Outbox.cancel_group(session, "reminder:12:24h") == 1
    assert await rig.statuses(early, day, other) == ["sent", "cancelled", "sent"]
    rig.clock.advance(hours=26)
    assert await rig.sender().deliver_due() == 0
    assert texts(rig.fake, chat) == ["за сутки", "другое"]


# 10 --------------------------------------------------------------------------------------
async def test_job_kinds_and_their_outcomes(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    staff, chat = rig.group(), rig.user()
    seen: list[OutboxJob] = []

    async def card(row: OutboxJob, bot: Bot) -> int | None:
        seen.append(row)
        message = await bot.send_message(row.chat_id, f"Заявка №{row.payload['application_id']}")
        return message.message_id

    async def broken(row: OutboxJob, bot: Bot) -> int | None:
        raise KeyError("Иванова Анна")  # personal data in an exception: not to be logged

    sender = rig.sender()
    sender.register("application_card", card)
    sender.register("broken", broken)
    async with rig.sessions.begin() as session:
        ok = Outbox.job(
            session,
            kind="application_card",
            payload={"application_id": 5},
            chat_id=staff,
            group_key="application:5",
            now=rig.clock(),
        )
        unknown = Outbox.job(session, kind="nobody", payload={}, chat_id=chat, now=rig.clock())
        bug = Outbox.job(session, kind="broken", payload={}, chat_id=rig.user(), now=rig.clock())
    with caplog.at_level(logging.INFO):
        assert await sender.deliver_due() == 1
    assert [(r.id, r.kind, r.payload, r.chat_id, r.group_key) for r in seen] == [
        (ok.id, "application_card", {"application_id": 5}, staff, "application:5")
    ]
    row = await rig.row(ok.id)
    assert row.status == "sent"
    assert row.result_message_id == rig.fake.messages(staff)[-1].message_id
    assert [
        (r.status, r.last_error) for r in (await rig.row(unknown.id), await rig.row(bug.id))
    ] == [
        ("failed", "unknown_kind"),
        ("failed", "handler_error"),
    ]
    assert "Иванова" not in caplog.text
    assert "Заявка" not in caplog.text


async def test_bad_requests_fail_except_not_modified(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    chat = rig.user()
    original = await rig.bot.send_message(chat, "Статус: на рассмотрении")
    async with rig.sessions.begin() as session:
        same = Outbox.call(
            session,
            method="editMessageText",
            payload={"message_id": original.message_id, "text": "Статус: на рассмотрении"},
            chat_id=chat,
            now=rig.clock(),
        )
        lost = Outbox.send_message(session, chat_id=-1009999999999, text="Секрет", now=rig.clock())
    with caplog.at_level(logging.INFO):
        assert await rig.sender().deliver_due() == 1
    assert [(r.status, r.last_error) for r in (await rig.row(same.id), await rig.row(lost.id))] == [
        ("sent", None),
        ("failed", "chat_not_found"),
    ]
    assert "Секрет" not in caplog.text
    assert "chat not found" not in caplog.text


async def test_calls_are_checked_when_written(rig: Rig) -> None:
    async with rig.sessions.begin() as session:
        with pytest.raises(ValueError, match="unknown Bot API method"):
            Outbox.call(session, method="sendTelegram", payload={}, chat_id=1, now=rig.clock())
        with pytest.raises(ValueError, match="validation error"):
            Outbox.call(session, method="sendDocument", payload={}, chat_id=1, now=rig.clock())
        with pytest.raises(ValueError, match="chat_id differs"):
            Outbox.call(
                session,
                method="sendMessage",
                payload={"chat_id": 2, "text": "x"},
                chat_id=1,
                now=rig.clock(),
            )


async def test_media_group_and_copy_results(rig: Rig) -> None:
    chat = rig.user()
    first = await rig.bot.send_message(chat, "оригинал")
    scan = await rig.bot.send_document(chat, BufferedInputFile(b"%PDF-1.4\n%%EOF\n", "scan.pdf"))
    assert scan.document is not None
    file_id = scan.document.file_id
    async with rig.sessions.begin() as session:
        copy = Outbox.call(
            session,
            method="copyMessage",
            payload={"from_chat_id": chat, "message_id": first.message_id},
            chat_id=chat,
            now=rig.clock(),
        )
        album = Outbox.call(
            session,
            method="sendMediaGroup",
            payload={"media": [{"type": "document", "media": file_id}] * 2},
            chat_id=chat,
            now=rig.clock() + timedelta(seconds=1),
        )
    sender = rig.sender()
    assert await sender.deliver_due() == 1
    rig.clock.advance(seconds=1)
    assert await sender.deliver_due() == 1
    copied = await rig.row(copy.id)
    assert copied.status == "sent"
    assert copied.result_message_id == first.message_id + 2
    sent_album = await rig.row(album.id)
    assert sent_album.status == "sent"
    assert sent_album.result_message_id == rig.fake.messages(chat)[-2].message_id


# 11 --------------------------------------------------------------------------------------
async def test_recover_does_not_resend_an_interrupted_send(rig: Rig) -> None:
    chat = rig.user()
    card = await rig.bot.send_message(chat, "Статус: новая")
    started = asyncio.Event()

    async def hangs(row: OutboxJob, bot: Bot) -> int | None:
        started.set()
        await asyncio.Event().wait()  # the HTTP call that never comes back
        return None

    crashed = rig.sender()
    crashed.register("notice", hangs)
    async with rig.sessions.begin() as session:
        job = Outbox.job(session, kind="notice", payload={}, chat_id=rig.user(), now=rig.clock())
        sent = Outbox.send_message(session, chat_id=chat, text="Время назначено", now=rig.clock())
        edit = Outbox.call(
            session,
            method="editMessageText",
            payload={"message_id": card.message_id, "text": "Статус: назначено"},
            chat_id=chat,
            now=rig.clock(),
        )
    task = asyncio.create_task(crashed.deliver_due())
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()  # the process dies in mid-call
    with pytest.raises(asyncio.CancelledError):
        await task
    # and, as if it also died after claiming these two:
    async with rig.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE outbox SET status = 'sending', attempts = 1, claimed_at = :at"
                " WHERE id IN (:a, :b)"
            ).bindparams(bindparam("at", type_=UTCDateTime())),
            {"at": rig.clock(), "a": sent.id, "b": edit.id},
        )
    assert await rig.statuses(job.id, sent.id, edit.id) == ["sending"] * 3

    fresh = rig.sender()
    fresh.register("notice", hangs)
    assert await fresh.recover() == 0  # within the lease: maybe still in flight elsewhere
    assert await fresh.deliver_due() == 0
    rig.clock.advance(seconds=61)
    assert await fresh.recover() == 3
    assert await rig.statuses(job.id, sent.id, edit.id) == ["failed", "failed", "pending"]
    assert (await rig.row(sent.id)).last_error == "interrupted"
    assert await fresh.deliver_due() == 1  # the edit, safe to repeat
    assert texts(rig.fake, chat) == ["Статус: новая"]  # "Время назначено" was not sent again
    assert rig.fake.messages(chat)[-1].data["text"] == "Статус: назначено"


# the scheduler ---------------------------------------------------------------------------
async def test_scheduler_ticks_and_wake_delivers_promptly(rig: Rig) -> None:
    chat = rig.user()
    sender = rig.sender()
    scheduler = build_scheduler(sender, tick_seconds=3600)
    scheduler.start()
    try:
        await asyncio.sleep(0.05)  # the first tick (at start) finds nothing
        after = rig.fake.call_count
        row_id = await rig.send(chat, "Сразу")
        sender.wake()
        await rig.fake.wait_for_call(
            "sendMessage", lambda call: call.params.get("chat_id") == chat, 2, after
        )
        for _ in range(100):
            if await rig.statuses(row_id) == ["sent"]:
                break
            await asyncio.sleep(0.01)
        assert await rig.statuses(row_id) == ["sent"]
    finally:
        await stop_scheduler(scheduler, sender)
    assert not scheduler.running
