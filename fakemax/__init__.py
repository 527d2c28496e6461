"""A lean fake MAX Bot API and the people who use it, for the tests of the MAX front end."""

from .client import FakeMaxUser
from .server import FakeMax, MaxMessage, dialog_chat_id

__all__ = ["FakeMax", "FakeMaxUser", "MaxMessage", "dialog_chat_id"]
