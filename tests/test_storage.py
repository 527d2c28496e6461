"""Migrations up and down, models in step with them, and the SQL dialogue storage."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.fsm.storage import SQLStorage
from bot.storage.db import (
    alembic_config,
    create_engine,
    create_session_factory,
    downgrade,
    migrate,
)
from bot.storage.models import Base
from tests.conftest import Harness


async def test_every_migration_runs_up_and_down(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in script.walk_revisions("base", "heads")][::-1]
    assert revisions
    for revision in revisions:
        await migrate(engine, revision)
    await downgrade(engine, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await migrate(engine)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == [], "models and migrations differ: add a migration"
    await engine.dispose()


async def test_sql_storage_keeps_state_and_data(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    storage = SQLStorage(create_session_factory(engine))
    key = StorageKey(bot_id=1, chat_id=10, user_id=10)
    other = StorageKey(bot_id=1, chat_id=-100, user_id=10, thread_id=5)
    assert await storage.get_state(key) is None
    assert await storage.get_data(key) == {}
    await storage.set_state(key, "Registration:full_name")
    await storage.set_data(key, {"registration": {"full_name": "Ё"}})
    await storage.set_state(other, "Other:x")
    assert await storage.get_state(key) == "Registration:full_name"
    assert await storage.get_data(key) == {"registration": {"full_name": "Ё"}}
    assert await storage.update_data(key, {"n": 1}) == {"registration": {"full_name": "Ё"}, "n": 1}
    # a new storage over the same database (a restart) sees the same
    again = SQLStorage(create_session_factory(engine))
    assert await again.get_state(key) == "Registration:full_name"
    assert await again.get_state(other) == "Other:x"
    await again.set_state(key, None)
    await again.set_data(key, {})
    assert await again.get_state(key) is None
    assert await again.forget_user(10) == 1  # the forum-topic row; the cleared one is gone
    assert await again.get_state(other) is None
    await engine.dispose()


async def test_an_updates_first_dialogue_read_brings_its_senders_patient(harness: Harness) -> None:
    """One statement reads the dialogue and the sender's patient at the start of an update
    (bot.fsm.storage); the patient middleware takes that answer once. A read later in the
    update (after a registration, say) asks the database again."""
    from sqlalchemy import event

    from bot.fsm.unit import dialogue_unit
    from bot.messengers.identity import Messenger, serving
    from tests.test_messenger_identity import new_patient

    await harness.start()
    patients = harness.services.patients
    storage = SQLStorage(harness.services.sessions)
    registered, newcomer = 777_000_201, 777_000_202
    with serving(Messenger.TELEGRAM):
        await patients.register(registered, new_patient("Мария Петровна"))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(harness.engine.sync_engine, "before_cursor_execute", count)
    try:
        with serving(Messenger.TELEGRAM):
            for user_id, expected in ((registered, "Мария Петровна"), (newcomer, None)):
                statements.clear()
                with dialogue_unit():
                    key = StorageKey(bot_id=1, chat_id=user_id, user_id=user_id)
                    await storage.set_state(key, "Registration:summary")
                    assert await storage.get_state(key) == "Registration:summary"
                    sender = await patients.sender(user_id)
                    assert (sender.full_name if sender else None) == expected
                    assert len(statements) == 1  # the dialogue and the patient together
                    if sender is None:  # registered during the update: read afresh
                        await patients.register(user_id, new_patient("Новая Пациентка"))
                        again = await patients.sender(user_id)
                        assert again is not None and again.full_name == "Новая Пациентка"
                # outside an update nothing is read along
                assert (await patients.sender(user_id)) is not None
    finally:
        event.remove(harness.engine.sync_engine, "before_cursor_execute", count)
        await harness.stop()
