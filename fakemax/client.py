"""A person on MAX talking to the bot through the fake server: sends text, presses buttons,
shares the contact, sends files and albums (one message with several attachments, as MAX has
no separate album), edits and deletes their own messages."""

from __future__ import annotations

import itertools
import re
from typing import Any

from .server import JSON, FakeMax, MaxMessage, dialog_chat_id, now_ms

ButtonMatcher = str | re.Pattern[str]
_callbacks = itertools.count(1)


class FakeMaxUser:
    def __init__(
        self, server: FakeMax, user_id: int, first_name: str = "Мария", last_name: str = ""
    ) -> None:
        self.server = server
        self.user_id = user_id
        self.user: JSON = {
            "user_id": user_id,
            "first_name": first_name,
            "last_name": last_name or None,
            "is_bot": False,
        }
        self.chat_id = dialog_chat_id(user_id)
        server.users[user_id] = self.user

    # --- acting -----------------------------------------------------------------------------

    async def start(self, payload: str | None = None) -> None:
        """The «Начать» button; a deep link ``https://max.ru/<bot>?start=<payload>`` brings it."""
        event: JSON = {
            "update_type": "bot_started",
            "timestamp": now_ms(),
            "chat_id": self.chat_id,
            "user": self.user,
        }
        if payload is not None:
            event["payload"] = payload
        await self.server.push(event)

    async def send(self, text: str, attachments: list[JSON] | None = None) -> MaxMessage:
        message = self.server.store(
            MaxMessage(
                mid=f"mid.u{self.server.next_seq():015x}",
                seq=self.server.next_seq(),
                chat_id=self.chat_id,
                sender=self.user,
                text=text,
                attachments=attachments or [],
            )
        )
        await self.server.push(
            {
                "update_type": "message_created",
                "timestamp": message.timestamp,
                "message": message.to_json(recipient_user=self.server.bot_user["user_id"]),
            }
        )
        return message

    async def share_contact(self, phone: str, *, own: bool = True) -> MaxMessage:
        """The ``request_contact`` button: MAX sends a ``contact`` attachment with a vCard."""
        owner = self.user if own else {**self.user, "user_id": self.user_id + 1}
        vcf = (
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"FN:{self.user['first_name']}\r\nTEL;TYPE=cell:{phone}\r\nEND:VCARD\r\n"
        )
        return await self.send(
            "", [{"type": "contact", "payload": {"vcf_info": vcf, "max_info": owner}}]
        )

    def _upload(self, name: str, data: bytes, kind: str) -> JSON:
        token = f"tok-user-{self.server.next_seq()}"
        self.server.files[token] = (name, data)
        attachment: JSON = {
            "type": kind,
            "payload": {"token": token, "url": self.server.file_url(token)},
        }
        if kind != "image":
            attachment |= {"filename": name, "size": len(data)}
        return attachment

    async def send_file(self, name: str, data: bytes, caption: str = "") -> MaxMessage:
        return await self.send(caption, [self._upload(name, data, "file")])

    async def send_album(
        self, files: list[tuple[str, bytes]], caption: str = "", kind: str = "image"
    ) -> MaxMessage:
        """Several files in one message: what MAX has instead of a Telegram album."""
        return await self.send(caption, [self._upload(name, data, kind) for name, data in files])

    async def edit(self, message: MaxMessage, text: str) -> None:
        message.text = text
        await self.server.push(
            {
                "update_type": "message_edited",
                "timestamp": now_ms(),
                "message": message.to_json(recipient_user=self.server.bot_user["user_id"]),
            }
        )

    async def delete(self, message: MaxMessage) -> None:
        message.deleted = True
        await self.server.push(
            {
                "update_type": "message_removed",
                "timestamp": now_ms(),
                "message_id": message.mid,
                "chat_id": self.chat_id,
                "user_id": self.user_id,
            }
        )

    async def click(self, button: ButtonMatcher, message: MaxMessage | None = None) -> str:
        """Press a button of the latest bot message that has it. A ``callback`` button sends a
        ``message_callback``; a ``message`` button sends its text; ``request_contact`` is
        :meth:`share_contact`. Returns the button's type."""
        target, found = self._find_button(button, message)
        kind = str(found["type"])
        if kind == "callback":
            await self.server.push(
                {
                    "update_type": "message_callback",
                    "timestamp": now_ms(),
                    "callback": {
                        "timestamp": now_ms(),
                        "callback_id": f"cb.{next(_callbacks)}",
                        "payload": found.get("payload"),
                        "user": self.user,
                    },
                    "message": target.to_json(recipient_user=self.user_id),
                }
            )
        elif kind == "message":
            await self.send(str(found["text"]))
        elif kind == "link":
            pass  # opens a browser; nothing reaches the bot
        else:
            raise AssertionError(f"press {kind} buttons with their own method")
        return kind

    def _find_button(
        self, matcher: ButtonMatcher, message: MaxMessage | None
    ) -> tuple[MaxMessage, JSON]:
        candidates = [message] if message else reversed(self.bot_messages())
        for candidate in candidates:
            for row in candidate.keyboard():
                for button in row:
                    if _matches(matcher, str(button.get("text", ""))):
                        return candidate, button
        raise AssertionError(f"no button {matcher!r}; buttons: {self.buttons()}")

    # --- reading ----------------------------------------------------------------------------

    def bot_messages(self) -> list[MaxMessage]:
        return [m for m in self.server.chat_messages(self.chat_id) if m.from_bot]

    def texts(self) -> list[str]:
        """What the person sees (html without tags)."""
        return [m.visible_text for m in self.bot_messages()]

    def last(self) -> MaxMessage:
        messages = self.bot_messages()
        assert messages, "the bot sent nothing"
        return messages[-1]

    def last_text(self) -> str:
        return self.last().visible_text

    def buttons(self, message: MaxMessage | None = None) -> list[list[str]]:
        target = message or self.last()
        return [[str(b.get("text")) for b in row] for row in target.keyboard()]

    def button_types(self, message: MaxMessage | None = None) -> dict[str, str]:
        target = message or self.last()
        return {str(b.get("text")): str(b.get("type")) for row in target.keyboard() for b in row}

    def notifications(self) -> list[str]:
        """What ``POST /answers`` showed this user (toasts)."""
        return [str(a.get("notification")) for a in self.server.answers if a.get("notification")]

    def received_files(self) -> list[tuple[str, bytes]]:
        files: list[tuple[str, bytes]] = []
        for message in self.bot_messages():
            for attachment in message.attachments:
                token: Any = (attachment.get("payload") or {}).get("token")
                if token in self.server.files:
                    files.append(self.server.files[token])
        return files


def _matches(matcher: ButtonMatcher, text: str) -> bool:
    if isinstance(matcher, re.Pattern):
        return matcher.search(text) is not None
    return matcher == text
