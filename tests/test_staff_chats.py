"""Staff chats checked live (each problem named with what to click), the bot telling a group its
id and what it lacks, and nothing lost toward staff: a card without a topic, a delivery that fails
for good alerting the coordinators once per cause and showing in /stats."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.staff_chats import Problem, check_chat
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import ROOT, TOKEN, Harness, with_fresh_staff_chats
from tests.processes import run
from tests.test_applications import submitted
from tests.test_broadcasts import coordinator_harness

_chat_ids = itertools.count(-1007700000001, -1)  # apart from other tests' chats


def new_chat_id() -> int:
    return next(_chat_ids)


async def test_every_problem_of_a_chat_is_found(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    ready = FakeGroup(fake, new_chat_id(), "Врачи", is_forum=True)
    basic = FakeGroup(fake, new_chat_id(), "Врачи", chat_type="group")
    no_topics = FakeGroup(fake, new_chat_id(), "Врачи")
    member = FakeGroup(fake, new_chat_id(), "Врачи", is_forum=True, bot_status="member")
    no_right = FakeGroup(fake, new_chat_id(), "Врачи", is_forum=True)
    no_right.set_bot_rights(can_manage_topics=False)
    kicked = FakeGroup(fake, new_chat_id(), "Врачи", is_forum=True, bot_status="kicked")

    assert await check_chat(bot, ready.chat_id) == ([], "Врачи")
    assert (await check_chat(bot, -1001000000001))[0] == [Problem.PLACEHOLDER]
    assert (await check_chat(bot, new_chat_id()))[0] == [Problem.NOT_FOUND]
    assert Problem.NOT_SUPERGROUP in (await check_chat(bot, basic.chat_id))[0]
    assert (await check_chat(bot, no_topics.chat_id))[0] == [Problem.TOPICS_OFF]
    assert (await check_chat(bot, member.chat_id))[0] == [Problem.NOT_ADMIN]
    assert (await check_chat(bot, no_right.chat_id))[0] == [Problem.NO_TOPICS_RIGHT]
    assert (await check_chat(bot, kicked.chat_id))[0] == [Problem.NOT_MEMBER]


def check_config(
    fake: FakeTelegram, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return run(  # subprocess.run, forked from the tests' fork server (tests/processes.py)
        [sys.executable, "-m", "bot", "--check-config"],
        cwd=tmp_path,
        env={
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.base_url,
            "PYTHONPATH": str(ROOT),
            **env,
        },
        timeout=60,
    )


@pytest.mark.process
async def test_check_config_refuses_placeholders_and_names_what_to_click(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    result = await asyncio_run(check_config, fake, tmp_path)
    assert result.returncode == 2
    assert "placeholders" in result.stderr and "STAFF_CHAT_IDS" in result.stderr
    assert "-1001000000001" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, nothing else logged

    bakulev = FakeGroup(fake, new_chat_id(), "Бакулев", is_forum=True)
    kulakov = FakeGroup(fake, new_chat_id(), "Кулаков", is_forum=True, bot_status="member")
    duty = FakeGroup(fake, new_chat_id(), "Дежурные")
    env = {
        "STAFF_CHAT_IDS": f"bakulev={bakulev.chat_id},kulakov={kulakov.chat_id}",
        "DUTY_CHAT_ID": str(duty.chat_id),
    }
    result = await asyncio_run(check_config, fake, tmp_path, **env)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f"{bakulev.chat_id} «Бакулев» — готов" in out
    assert "бот не администратор" in out and "«Добавить администратора» → @" in out
    assert "темы выключены" in out and "запасном режиме" in out  # the fallback, announced
    assert "configuration NOT ok" in out

    kulakov.set_bot_status("administrator")
    result = await asyncio_run(check_config, fake, tmp_path, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration ok" in result.stdout


async def asyncio_run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking call off the event loop (the fake Bot API answers on this loop)."""
    import asyncio

    return await asyncio.to_thread(function, *args, **kwargs)


async def test_bot_added_to_a_group_tells_its_id_and_what_it_lacks(
    harness: Harness, make_user: Callable[..., FakeUser]
) -> None:
    admin = make_user(first_name="Админ")
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(
        harness.fake, center.staff_chat_id, "Бакулев", is_forum=True, bot_status="left"
    )
    await group.bot_added(by=admin, status="member")
    text = group.messages()[-1].text or ""
    assert f"id этого чата: {group.chat_id}" in text
    assert "НМИЦ ССХ им. А.Н. Бакулева" in text
    assert "бот не администратор" in text

    await group.bot_added(by=admin, status="administrator", can_manage_topics=False)
    text = group.messages()[-1].text or ""
    assert "без права управлять темами" in text and "«Управление темами»" in text

    await group.bot_added(by=admin, status="administrator", can_manage_topics=True)
    assert "Всё готово" in (group.messages()[-1].text or "")

    other = FakeGroup(harness.fake, new_chat_id(), "Прочие", bot_status="left")
    await other.bot_added(by=admin, status="administrator")
    text = other.messages()[-1].text or ""
    assert "пока не указан" in text and f"bakulev={other.chat_id}" in text


@pytest.fixture
def coordinator(make_user: Callable[..., FakeUser]) -> FakeUser:
    return make_user(first_name="Ольга")


@pytest.fixture
async def coordinated(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
) -> AsyncIterator[Harness]:
    h = coordinator_harness(
        fake, tmp_path, i18n, with_fresh_staff_chats(catalog), database_url, coordinator
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


def alerts(coordinator: FakeUser) -> list[str]:
    return [m.text or "" for m in coordinator.messages() if "⚠️" in (m.text or "")]


async def test_card_goes_without_a_topic_and_coordinators_are_told_once(
    coordinated: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    h = coordinated
    center = h.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(h.fake, center.staff_chat_id, "Бакулев", is_forum=True)
    group.set_bot_rights(can_manage_topics=False)
    await coordinator.send("/start")

    first, second = make_user(), make_user()
    await submitted(first, h)
    await submitted(second, h)
    await h.deliver()

    cards = [m for m in group.messages() if "Заявка №" in (m.text or "")]
    assert len(cards) == 2
    assert all(m.data.get("message_thread_id") is None for m in cards)
    assert group.topics() == []
    [alert] = alerts(coordinator)
    assert "отправлена без темы" in alert and str(group.chat_id) in alert
    assert "«Управление темами»" in alert


async def test_a_staff_delivery_failing_for_good_alerts_once_and_shows_in_stats(
    coordinated: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    h = coordinated
    await coordinator.send("/start")
    # Bakulev's chat was never made: Telegram answers "chat not found" to every card.
    first, second = make_user(), make_user()
    await submitted(first, h)
    await submitted(second, h)
    await h.deliver()
    failed = await h.rows("SELECT last_error FROM outbox WHERE status = 'failed'")
    assert failed == [("chat_not_found",), ("chat_not_found",)]
    [alert] = alerts(coordinator)
    assert "не доставлено" in alert and "chat_not_found" in alert
    assert "НМИЦ ССХ им. А.Н. Бакулева" in alert

    await coordinator.send("/stats")
    assert "Не доставлено сотрудникам: 2 (chat_not_found: 2)" in (coordinator.last_text() or "")


async def test_a_group_that_removed_the_bot_is_a_staff_failure_not_a_blocked_patient(
    coordinated: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    h = coordinated
    center = h.catalog.center("bakulev")
    assert center is not None
    FakeGroup(h.fake, center.staff_chat_id, "Бакулев", is_forum=True, bot_status="kicked")
    await coordinator.send("/start")
    patient = make_user()
    await submitted(patient, h)  # the card gets a 403: the bot was removed from the group
    await h.deliver()
    assert await h.rows("SELECT last_error FROM outbox WHERE status = 'failed'") == [("forbidden",)]
    assert await h.rows("SELECT unreachable_at FROM patients") == [(None,)]  # not the patient
    [alert] = alerts(coordinator)
    assert "forbidden" in alert
