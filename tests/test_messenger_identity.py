"""A patient is (messenger, user id): the same id or the same phone on Telegram and on MAX are
two patients; the migrations that bring the messenger (patients, outbox, inbox) go up and down
with MAX rows present. (No aiogram-max needed: runs on Python 3.11 too.)"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.messengers.identity import Messenger, serving
from bot.services.patients import AlreadyRegisteredError, NewPatient
from bot.storage.db import create_engine, downgrade, migrate
from tests.conftest import Harness

PHONE = "+79161234567"


def new_patient(name: str) -> NewPatient:
    return NewPatient(
        full_name=name,
        birth_date=date(1960, 5, 1),
        phone=PHONE,
        phone_verified=True,
        region_code=38,
        time_zone="Asia/Irkutsk",
        consent_version="1",
        consent_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
    )


async def test_same_user_id_and_phone_on_two_messengers_are_two_patients(
    harness: Harness,
) -> None:
    patients = harness.services.patients
    user_id = 777_000_111
    on_telegram = await patients.register(user_id, new_patient("Мария Телеграм"))
    with serving(Messenger.MAX, chat_id=90_000_777_000):
        assert await patients.get(user_id) is None  # Telegram's patient is not MAX's
        on_max = await patients.register(user_id, new_patient("Мария Макс"))
        assert (await patients.get(user_id)) == on_max
        with pytest.raises(AlreadyRegisteredError):
            await patients.register(user_id, new_patient("again"))
    assert on_max.id != on_telegram.id
    assert (await patients.get(user_id)) == on_telegram
    rows = await harness.rows(
        "SELECT messenger, telegram_id, chat_id, phone FROM patients ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("telegram", user_id, None, PHONE),
        ("max", user_id, 90_000_777_000, PHONE),
    ]


async def test_the_messenger_migration_goes_down_without_max_patients_and_up_again(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    await migrate(engine, "0012")
    insert = (
        "INSERT INTO patients (telegram_id, full_name, birth_date, phone, phone_verified,"
        " region_code, time_zone, consent_version, consent_at, registered_at, updated_at)"
        " VALUES (:tid, 'x', '1960-05-01', :phone, true, 38, 'Asia/Irkutsk', '1',"
        " :at, :at, :at)"
    )
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(text(insert), {"tid": 1, "phone": PHONE, "at": at})
    await migrate(engine)  # an existing patient becomes a Telegram one
    async with engine.begin() as conn:
        assert (await conn.execute(text("SELECT messenger FROM patients"))).scalar() == "telegram"
        await conn.execute(
            text(
                insert.replace("(telegram_id,", "(messenger, telegram_id,").replace(
                    "VALUES (:tid,", "VALUES ('max', :tid,"
                )
            ),
            {"tid": 1, "phone": PHONE, "at": at},
        )
    await downgrade(engine, "0012")
    async with engine.connect() as conn:
        ids = (await conn.execute(text("SELECT telegram_id FROM patients"))).scalars().all()
    assert list(ids) == [1]  # the MAX patient went with the messenger column
    await migrate(engine)
    await engine.dispose()


async def test_the_inbox_migration_keys_updates_by_messenger_and_goes_down_without_max(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    await migrate(engine, "0014")
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    insert = (
        "INSERT INTO inbox (update_id, order_key, payload, status, received_at)"
        " VALUES (7, 1, '{\"update_id\": 7}', 'pending', :at)"
    )
    async with engine.begin() as conn:
        await conn.execute(text(insert), {"at": at})
    await migrate(engine)  # a pending update stored before becomes Telegram's
    max_row = insert.replace("(update_id,", "(messenger, update_id,").replace(
        "VALUES (7,", "VALUES ('max', 7,"
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(text("SELECT messenger, update_id, payload FROM inbox"))).all()
        assert [(r[0], r[1]) for r in rows] == [("telegram", 7)]
        await conn.execute(text(max_row), {"at": at})  # MAX's update 7 is another update
    await downgrade(engine, "0014")
    async with engine.connect() as conn:
        ids = (await conn.execute(text("SELECT update_id FROM inbox"))).scalars().all()
    assert list(ids) == [7]  # Telegram's is kept, MAX's went with the messenger column
    with pytest.raises(IntegrityError):  # keyed by update_id alone again
        async with engine.begin() as conn:
            await conn.execute(text(insert), {"at": at})
    await migrate(engine)
    await engine.dispose()
