"""fakegram: an in-repo fake Telegram Bot API server and a client that plays users.

async with FakeTelegram() as server:
    server.add_bot(TOKEN)
    user = FakeUser(server, 1001)
    await user.send("/start")
"""

from .client import (
    AlbumDocument,
    AlbumPhoto,
    CallbackAnswerText,
    FakeGroup,
    FakeUser,
    PushedUpdate,
    ReceivedFile,
)
from .models import ApiCall, ApiError, CallbackAnswer, StoredFile, StoredMessage, Topic
from .server import FakegramTimeout, FakeTelegram

__all__ = [
    "AlbumDocument",
    "AlbumPhoto",
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "CallbackAnswerText",
    "FakeGroup",
    "FakeTelegram",
    "FakeUser",
    "FakegramTimeout",
    "PushedUpdate",
    "ReceivedFile",
    "StoredFile",
    "StoredMessage",
    "Topic",
]
