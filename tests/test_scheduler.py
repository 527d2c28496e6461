"""The scheduler in-process, on the test's clock: the lease (one runner at a time, renewal,
expiry, takeover, stop on a failed renewal), SLA escalations of overdue applications, the
coordinators' daily digest, and the retention purge."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot.app import build_outbox
from bot.catalog import Catalog
from bot.services.outbox import Outbox
from bot.storage.models import FsmRecord
from bot.storage.outbox_models import OutboxStatus
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from scheduler.lease import DatabaseLease, new_holder_id
from scheduler.runner import SchedulerRunner
from tests.conftest import Harness, with_fresh_staff_chats
from tests.helpers import NAME, wait_until
from tests.test_applications import submitted

LEASE = 30.0


# ------------------------------------------------------------------------------------- lease


def lease(h: Harness, holder: str) -> DatabaseLease:
    return DatabaseLease(h.services.sessions, h.clock, seconds=LEASE, holder=holder)


def runner(h: Harness, holder: str) -> SchedulerRunner:
    # a tick of an hour: the jobs run once at start, the test delivers by hand
    return SchedulerRunner(build_outbox(h.services, h.bot), lease(h, holder), tick_seconds=3600)


async def test_one_lease_holder_renews_and_a_standby_takes_over_after_expiry(
    harness: Harness,
) -> None:
    first, second = lease(harness, "first"), lease(harness, "second")
    assert await first.acquire()
    assert not await second.acquire()
    harness.clock.advance(seconds=10)
    assert await first.acquire()  # renewed: now valid until +40 s
    harness.clock.advance(seconds=29)
    assert not await second.acquire()
    assert await first.current_holder() == "first"
    harness.clock.advance(seconds=1.5)  # the holder stopped renewing 30 s ago: expired
    assert await first.current_holder() is None
    assert await second.acquire()
    assert not await first.acquire()  # the old holder cannot come back while it is held
    await second.release()
    assert await first.acquire()  # a released lease is free at once


async def test_of_many_contenders_exactly_one_gets_the_lease(harness: Harness) -> None:
    contenders = [lease(harness, f"c{i}") for i in range(6)]
    won = await asyncio.gather(*(c.acquire() for c in contenders))
    assert won.count(True) == 1
    harness.clock.advance(seconds=LEASE + 1)  # the winner died: all try to take over at once
    won = await asyncio.gather(*(c.acquire() for c in contenders))
    assert won.count(True) == 1


async def test_a_dead_holder_on_this_host_is_replaced_without_waiting(harness: Harness) -> None:
    dead_pid = _last_pid()
    host, _pid, namespace, token = new_holder_id().split(":")

    def holder(host: str, pid: int) -> DatabaseLease:
        name = f"{host}:{pid}:{namespace}:{token}"
        return DatabaseLease(harness.services.sessions, harness.clock, seconds=LEASE, holder=name)

    contender = lease(harness, f"{host}:{os.getpid()}:{namespace}:other")
    for alive_or_elsewhere in (holder(host, os.getppid()), holder("another-host", dead_pid)):
        assert await alive_or_elsewhere.acquire()
        assert not await contender.acquire()  # it may be alive: wait for the expiry
        await alive_or_elsewhere.release()
    assert await holder(host, dead_pid).acquire()
    assert await contender.acquire()  # its process is gone: taken at once


def _last_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_runners_run_the_jobs_only_while_holding_the_lease(harness: Harness) -> None:
    a, b = runner(harness, "a"), runner(harness, "b")
    try:
        assert await a.check() and a.active
        assert not await b.check() and not b.active  # a hot standby
        harness.clock.advance(seconds=a.renew_every)
        assert await a.check() and a.active
        assert not await b.check()
        harness.clock.advance(seconds=LEASE + 0.5)  # a stalled (no renewal) beyond its lease
        assert await b.check() and b.active  # the standby takes over
        assert not await a.check() and not a.active  # a stops its jobs at its next look
        await b.stop()  # a graceful stop releases the lease ...
        assert not b.active
        assert await a.check() and a.active  # ... and the standby takes over at once
    finally:
        await a.stop()
        await b.stop()


async def test_a_failed_renewal_stops_the_jobs_at_once(harness: Harness) -> None:
    a = runner(harness, "a")
    try:
        assert await a.check() and a.active

        async def unreachable() -> bool:
            raise ConnectionResetError

        a.lease.acquire = unreachable  # type: ignore[method-assign]
        assert not await a.check()
        assert not a.active

        async def hangs() -> bool:
            await asyncio.sleep(3600)
            return True

        a.renew_timeout = 0.05
        a.lease.acquire = hangs  # type: ignore[method-assign]
        assert not await a.check()  # a renewal not answered in time counts as failed
        assert not a.active
    finally:
        await a.stop()


async def test_the_active_runner_delivers_due_rows_the_standby_does_not(
    harness: Harness, make_user: Any
) -> None:
    patient = make_user()
    async with harness.services.sessions.begin() as session:
        Outbox.send_message(session, chat_id=patient.user_id, text="row 1", now=harness.clock())
    a, b = runner(harness, "a"), runner(harness, "b")
    try:
        await a.check()
        await b.check()
        await patient.wait_for_message(lambda m: m.content == "row 1")

        async def sent() -> bool:  # a sent row is never claimed again: the count is final
            return await harness.rows("SELECT status FROM outbox") == [("sent",)]

        await wait_until(sent, within=10, what="the row marked sent")
        assert [m.content for m in patient.messages()] == ["row 1"]
        rows = await harness.rows("SELECT holder FROM leases")
        assert rows == [("a",)]
    finally:
        await a.stop()
        await b.stop()


# --------------------------------------------------------------------------------------- SLA


@pytest.fixture
async def coordinated(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    make_user: Any,
) -> AsyncIterator[tuple[Harness, FakeUser, FakeGroup]]:
    """A bot with a coordinator and Bakulev's staff forum."""
    coordinator = make_user(first_name="Ольга")
    h = Harness(
        fake,
        tmp_path,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=database_url,
        coordinator_ids=str(coordinator.user_id),
    )
    await h.start()
    center = h.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    try:
        yield h, coordinator, group
    finally:
        await h.stop()


def escalations(group: FakeGroup) -> list[Any]:
    return [m for m in group.messages() if "ждёт решения" in (m.text or "")]


async def test_sla_escalates_after_three_days_once_a_day_until_handled(
    coordinated: tuple[Harness, FakeUser, FakeGroup], user: FakeUser
) -> None:
    h, coordinator, group = coordinated
    await submitted(user, h)
    thread = group.topics()[0].thread_id

    h.clock.advance(days=2, hours=23, minutes=59)
    assert await h.services.sla.escalate_overdue() == 0
    h.clock.advance(minutes=1)  # three days without a decision
    assert await h.services.sla.escalate_overdue() == 1
    await h.deliver()
    [staff_note] = escalations(group)
    assert staff_note.message_thread_id == thread  # in the application's topic
    assert "Заявка №1 ждёт решения" in staff_note.text
    [note] = coordinator.messages()
    assert "Просрочена заявка №1" in note.text
    assert "НМИЦ ССХ" in note.text and "Иркутская область" in note.text
    assert "25.11.2026 12:00 (Europe/Moscow)" in note.text
    for private in (NAME, "ИБС", "стенокардия", "Давящие"):
        assert private not in note.text  # no diagnosis, no name for coordinators

    # at most once a day, and a restart does not repeat it
    assert await h.services.sla.escalate_overdue() == 0
    h.clock.advance(hours=23)
    await h.restart()
    assert await h.services.sla.escalate_overdue() == 0
    await h.deliver()
    assert len(escalations(group)) == 1 and len(coordinator.messages()) == 1

    h.clock.advance(hours=1)  # a day after the first: once more
    await h.bot.delete_forum_topic(group.chat_id, thread)  # someone deleted the topic
    assert await h.services.sla.escalate_overdue() == 1
    await h.deliver()
    [again] = escalations(group)  # the deleted topic took the first one with it
    assert again.message_thread_id is None  # this one is in the chat itself
    assert len(coordinator.messages()) == 2

    await h.services.applications.decline(1, "Пётр Врачев", "вне профиля центра")
    await h.deliver()
    h.clock.advance(days=2)
    assert await h.services.sla.escalate_overdue() == 0
    await h.deliver()
    notes = [m for m in coordinator.messages() if "Просрочена" in (m.text or "")]
    assert len(escalations(group)) == 1 and len(notes) == 2
    # the card went with the deleted topic: its update failed for good, and that is told once
    [alert] = [m for m in coordinator.messages() if "не доставлено" in (m.text or "")]
    assert "message_not_found" in (alert.text or "")


async def test_an_escalation_handled_before_delivery_is_not_sent(
    coordinated: tuple[Harness, FakeUser, FakeGroup], user: FakeUser
) -> None:
    h, coordinator, group = coordinated
    await submitted(user, h)
    h.clock.advance(days=3)
    assert await h.services.sla.escalate_overdue() == 1  # queued, not yet delivered
    starts = h.clock() + timedelta(days=1)
    await h.services.applications.assign_time(1, "Пётр Врачев", starts)
    await h.deliver()
    assert escalations(group) == []
    assert coordinator.messages() == []
    rows = await h.rows("SELECT status FROM outbox WHERE kind = 'sla_escalation'")
    assert {r[0] for r in rows} == {"sent"}  # settled (as nothing to say), never retried


async def test_daily_digest_at_nine_moscow_time_once(
    coordinated: tuple[Harness, FakeUser, FakeGroup], user: FakeUser, make_user: Any
) -> None:
    h, coordinator, _group = coordinated
    await submitted(user, h)  # №1 on 25.11 at 12:00 Moscow: overdue by the 29th
    h.clock.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    second = make_user(first_name="Вера")
    await submitted(second, h)  # №2 on 28.11 at 13:00 Moscow: new
    starts = datetime(2026, 11, 29, 11, 30, tzinfo=UTC)  # 14:30 in Moscow on the 29th
    await h.services.applications.assign_time(2, "Пётр Врачев", starts)
    await h.deliver()
    before = len(coordinator.messages())

    h.clock.now = datetime(2026, 11, 29, 5, 59, tzinfo=UTC)  # 08:59 in Moscow
    assert not await h.services.sla.queue_digest()
    h.clock.advance(minutes=1)
    assert await h.services.sla.queue_digest()
    assert not await h.services.sla.queue_digest()
    await h.restart()
    h.clock.advance(hours=3)
    assert not await h.services.sla.queue_digest()  # once a day, restart or not
    await h.deliver()
    digests = [m for m in coordinator.messages()[before:] if "Сводка" in (m.text or "")]
    assert len(digests) == 1
    digest = digests[0].text
    assert "Сводка на 29.11.2026, 09:00 (Europe/Moscow)" in digest
    center = "НМИЦ ССХ им. А.Н. Бакулева"
    assert "Новые заявки за сутки: 1\n" in digest
    assert f"№2 — {center}, Иркутская область, назначено время" in digest
    assert "Без решения дольше 3 сут.: 1\n" in digest
    assert f"№1 — {center}, Иркутская область, ждёт с 25.11.2026 12:00 (Europe/Moscow)" in digest
    assert "Консультации сегодня: 1\n" in digest
    assert f"14:30 — консультация №1, {center}, Иркутская область" in digest
    for private in (NAME, "ИБС", "стенокардия", "Давящие"):
        assert private not in digest

    h.clock.now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # the next day: the next digest
    assert await h.services.sla.queue_digest()


# --------------------------------------------------------------------------------- retention


async def test_retention_purges_old_settled_rows_and_finished_dialogues_only(
    harness: Harness,
) -> None:
    now = harness.clock()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    ids: dict[str, int] = {}
    async with harness.services.sessions.begin() as session:
        for name, created, status in [
            ("old_sent", old, OutboxStatus.SENT),
            ("old_failed", old, OutboxStatus.FAILED),
            ("old_cancelled", old, OutboxStatus.CANCELLED),
            ("old_missed", old, OutboxStatus.MISSED),
            ("old_pending", old, OutboxStatus.PENDING),
            ("old_sending", old, OutboxStatus.SENDING),
            ("recent_sent", recent, OutboxStatus.SENT),
            ("old_sent_lately", old, OutboxStatus.SENT),
            ("old_due_later", old, OutboxStatus.CANCELLED),
            ("old_sent_of_a_paused_broadcast", old, OutboxStatus.SENT),
            ("paused_broadcast_waits", old, OutboxStatus.PENDING),
            ("old_sent_of_a_finished_group", old, OutboxStatus.SENT),
        ]:
            group = "broadcast:1" if "broadcast" in name else None
            group = "reminders:7" if "group" in name else group
            row = Outbox.send_message(session, chat_id=1, text=name, now=created, group_key=group)
            row.status = status
            if status is OutboxStatus.SENT:
                row.sent_at = created
            if name == "old_sent_lately":
                row.sent_at = recent
            if name == "old_due_later":
                row.due_at = now + timedelta(days=1)
            await session.flush()
            ids[name] = row.id
        for user_id, state, data, updated in [
            (1, None, "{}", old),
            (2, None, '{"staff": {"application_id": 1}}', old),
            (3, "Registration:birth_date", '{"registration": {}}', old),
            (4, None, '{"x": 1}', recent),
        ]:
            session.add(
                FsmRecord(
                    bot_id=1,
                    chat_id=user_id,
                    user_id=user_id,
                    thread_id=0,
                    business_connection_id="",
                    destiny="default",
                    state=state,
                    data=data,
                    updated_at=updated,
                )
            )

    purged = await harness.services.retention.purge_daily()
    assert purged is not None and purged.outbox_rows == 5 and purged.dialogues == 2
    left = {r[0] for r in await harness.rows("SELECT id FROM outbox")}
    kept = {name for name, row_id in ids.items() if row_id in left}
    assert kept == {
        "old_pending",
        "old_sending",
        "recent_sent",
        "old_sent_lately",
        "old_due_later",
        "old_sent_of_a_paused_broadcast",
        "paused_broadcast_waits",
    }
    users = await harness.rows("SELECT user_id FROM fsm_records ORDER BY user_id")
    assert users == [(3,), (4,)]  # the unfinished dialogue stays, and the recent one

    assert await harness.services.retention.purge_daily() is None  # once a day
    harness.clock.advance(days=1)
    assert await harness.services.retention.purge_daily() is not None


async def test_periodic_jobs_run_when_the_runner_takes_the_lease(
    coordinated: tuple[Harness, FakeUser, FakeGroup], user: FakeUser
) -> None:
    """The runner built as the bot builds it runs the SLA check and the digest by itself."""
    from scheduler.runner import build_runner

    h, coordinator, group = coordinated
    await submitted(user, h)
    h.clock.advance(days=3, hours=1)  # 13:00 in Moscow, after the digest time
    scheduler = build_runner(h.services, build_outbox(h.services, h.bot))
    try:
        assert await scheduler.check()
        for _ in range(100):
            if len(coordinator.messages()) == 2 and escalations(group):
                break
            await asyncio.sleep(0.1)
        texts = sorted(m.text or "" for m in coordinator.messages())
        assert len(texts) == 2
        assert "Просрочена заявка №1" in texts[0] and "Сводка" in texts[1]
        assert len(escalations(group)) == 1
    finally:
        await scheduler.stop()
    counts = await h.rows(
        "SELECT kind, count(*) FROM outbox WHERE kind IN ('sla_escalation', 'coordinator_digest') "
        "GROUP BY kind ORDER BY kind"
    )
    assert counts == [("coordinator_digest", 1), ("sla_escalation", 2)]
