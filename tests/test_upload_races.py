"""Upload batches when several workers see them: a batch whose processing two workers resume at
once (each on its start) is archived and acknowledged once."""

from __future__ import annotations

import asyncio

from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import register
from tests.test_documents import png


async def test_a_batch_resumed_by_two_workers_at_once_is_archived_and_acknowledged_once(
    harness: Harness, user: FakeUser
) -> None:
    await register(user)
    await user.send_album([png(501), png(502)], caption="выписка")
    await harness.uploads.close()  # the worker died before its timer fired
    harness.clock.advance(seconds=harness.settings.upload_quiet_seconds + 1)
    [(batch_id,)] = await harness.rows("SELECT id FROM upload_batches")
    closed = await harness.services.documents.close_if_quiet(batch_id)
    assert closed is not None and closed.type_code is not None  # now "processing"
    before = len(harness.fake.calls("sendMessage", chat_id=user.user_id))

    # Two workers start and both find the batch interrupted.
    await asyncio.gather(
        harness.uploads.finish(batch_id, None), harness.uploads.finish(batch_id, None)
    )

    sent = harness.fake.calls("sendMessage", chat_id=user.user_id)[before:]
    assert [str(c.params["text"]) for c in sent] == ["✅ Получено 2 файла — Выписка"]
    assert await harness.rows("SELECT count(*) FROM documents") == [(1,)]
    assert await harness.rows("SELECT count(*) FROM document_files") == [(2,)]
