"""The staff guard (bot.filters.staff): a card's buttons and dialogues act only in the chat of the
application's own center and only for its members, whatever the callback data says."""

from __future__ import annotations

from typing import Any

from bot.callbacks import StaffAction, StaffCb, TimeSlotCb
from bot.staff_access import StaffAccess
from fakegram.client import FakeGroup, FakeUser
from tests.conftest import Harness
from tests.test_applications import card, staff, submitted

__all__ = ["staff"]  # the fixture, used by name


async def test_card_buttons_forged_in_another_centers_chat_are_refused(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    other_center = next(
        c for c in harness.catalog.centers if c.staff_chat_id != group.chat_id and c.staff_chat_id
    )
    other = FakeGroup(harness.fake, other_center.staff_chat_id, "Другой центр", is_forum=True)
    other.add_member(doctor)  # a doctor of both centers
    posted = await harness.bot.send_message(other.chat_id, "Заявки центра")
    token = harness.bot.token
    stored = harness.fake.chat(other.chat_id, token=token).messages[posted.message_id]
    forged = (
        StaffCb(action=StaffAction.DECLINE, app=1).pack(),
        StaffCb(action=StaffAction.DOCUMENTS, app=1).pack(),
        TimeSlotCb(app=1, day=20261127, minutes=600, confirm=True).pack(),
    )
    for number, data in enumerate(forged):
        query = harness.fake.new_callback_query(doctor.user_json, stored, data, token=token)
        update = {"update_id": 920_000_000 + number, "callback_query": query}
        await harness.fake.update_sink(update)  # type: ignore[misc]
        answer = harness.fake.callback_answer(query["id"], token=token)
        assert answer is not None and "Недостаточно прав" in (answer.text or ""), data
        assert answer.show_alert, data
    assert [m.text for m in other.messages()] == ["Заявки центра"]
    assert await harness.rows("SELECT status FROM applications") == [("submitted",)]
    assert await harness.rows("SELECT count(*) FROM consultations") == [(0,)]
    assert card(group) is not None


async def test_a_doctor_who_left_the_chat_mid_dialogue_is_not_heard(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "✖️ Отклонить")
    assert "напишите причину отказа" in (group.last_message().text or "")
    harness.dp["access"] = StaffAccess(ttl_seconds=0)  # the membership is asked each time
    group.add_member(doctor, status="left")
    posted = len(group.messages())
    await doctor.send_in_group(group, "Не наш профиль")
    assert len(group.messages()) == posted  # no answer
    group.add_member(doctor)  # back in the chat: the dialogue ended with the refusal
    await doctor.send_in_group(group, "Не наш профиль")
    assert len(group.messages()) == posted
    assert await harness.rows("SELECT status FROM applications") == [("submitted",)]
