"""Outer middlewares: the in-flight counter for graceful stop and the patient lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from bot.services.patients import PatientService

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class InFlightMiddleware(BaseMiddleware):
    """Counts updates being handled so a stop can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._count

    async def drained(self, grace_seconds: float) -> bool:
        try:
            async with asyncio.timeout(grace_seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


class PatientMiddleware(BaseMiddleware):
    """Puts the registered patient (a DTO or None) into the handler data as ``patient``."""

    def __init__(self, patients: PatientService) -> None:
        self._patients = patients

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        patient = await self._patients.sender(user.id) if user else None
        chat = data.get("event_chat")
        private = chat is not None and chat.type == "private"
        if patient is not None and patient.unreachable and user is not None and private:
            # They write to the bot again, so they unblocked it: notifications resume.
            await self._patients.mark_reachable(user.id)
        data["patient"] = patient
        return await handler(event, data)
