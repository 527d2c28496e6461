"""Receiving updates: long polling or a webhook, both through the inbox (bot.services.inbox).

An update is stored before Telegram learns it arrived (the polling offset moves past it, or the
webhook answers 200), then handled by the Dispatcher and marked finished. One user's updates are
handled in order; updates a dead worker left behind are taken over; a repeated update_id is
handled once.

Another messenger's bot (MAX, ``bot.messengers.max_front``) is served by the same inbox and
runner as a :class:`Front`: its updates are long-polled and stored under its messenger before
its poll marker moves on, then handled by its own Dispatcher; its users' order keys, update ids
and dialogues are its own."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.fsm.backends import DialogueRedisStorage
from bot.fsm.storage import SQLStorage
from bot.fsm.unit import DialogueUnit, WriteBehindStorage, dialogue_unit
from bot.logging_setup import safe_exc_info
from bot.messengers.identity import Messenger
from bot.observability import HealthCheck, reachability
from bot.process import stop_on_signals
from bot.services.inbox import InboxService, StoredUpdate, stable_worker_name
from bot.storage.db import SessionFactory

logger = logging.getLogger("bot.runner")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
POLLING_TIMEOUT = 25


Feed = Callable[[Dispatcher, Bot, Update], Awaitable[Any]]


async def feed_telegram_update(dp: Dispatcher, bot: Bot, update: Update) -> Any:
    return await dp.feed_update(bot, update)


@dataclass(frozen=True, slots=True)
class Front:
    """A messenger's bot and Dispatcher, and how one of its updates is fed to it (MAX's feed
    says whose update it is: bot.messengers.max_front.feed_max_update)."""

    messenger: Messenger
    bot: Bot
    dp: Dispatcher
    feed: Feed = feed_telegram_update


def new_worker_id(name: str) -> str:
    """``name/pid/random``: unique per process; the name lets a restart find its own work."""
    return f"{name}/{os.getpid()}/{secrets.token_hex(3)}"[:64]


class UpdateProcessor:
    """Handles stored updates: one user's strictly in update_id order (also across workers: an
    update waits while an earlier one of the same user is pending elsewhere), different users
    concurrently. Each update's dialogue changes are saved in the transaction that marks it
    handled (bot.fsm.unit). ``others``: the fronts of other messengers (MAX) whose updates it
    handles too; a user is (messenger, user id)."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        inbox: InboxService,
        *,
        predecessor: str | None = None,
        predecessor_is_derived: bool = False,
        check_order_each: bool = False,
        others: Sequence[Front] = (),
    ) -> None:
        self._fronts = {
            front.messenger: front for front in (Front(Messenger.TELEGRAM, bot, dp), *others)
        }
        self._inbox = inbox
        self._predecessor = predecessor
        self._predecessor_is_derived = predecessor_is_derived
        # Webhook workers: Telegram may deliver two updates of one user to two workers at once,
        # and the other's may not have been stored yet when this one was: ask again before each.
        self._check_order_each = check_order_each
        self._queues: dict[tuple[Messenger, int], list[tuple[int, StoredUpdate]]] = {}
        self._runners: dict[tuple[Messenger, int], asyncio.Task[None]] = {}
        self._known: set[tuple[Messenger, int]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        #: Cleared while a take-over is claiming updates and not yet submitted them: an update
        #: claimed (committed) but not in its queue yet must not be overtaken by a later one.
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def pending(self) -> int:
        return len(self._known)

    def submit(self, stored: StoredUpdate) -> None:
        known = (stored.messenger, stored.update_id)
        if known in self._known:
            return
        self._known.add(known)
        heapq.heappush(self._queues.setdefault(stored.key, []), (stored.update_id, stored))
        if stored.key not in self._runners:
            self._runners[stored.key] = asyncio.create_task(self._run_key(stored.key))

    async def _run_key(self, key: tuple[Messenger, int]) -> None:
        """Handle the key's updates, smallest update_id first (one taken over from a dead worker
        may arrive after later ones), each only when no earlier one is pending elsewhere."""
        queue = self._queues[key]
        delay = 0.01
        try:
            while queue:
                await self._settled.wait()
                _, item = queue[0]
                check = item.behind_others or self._check_order_each
                if check and await self._inbox.waits_for_others(item):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                if not self._settled.is_set() or queue[0][1] is not item:
                    continue  # an earlier update was taken over meanwhile: it goes first
                delay = 0.01
                heapq.heappop(queue)
                try:
                    await self._handle(item)
                finally:
                    self._known.discard((item.messenger, item.update_id))
        finally:
            del self._runners[key]
            if not queue:  # else cancelled (a stop): the rest is given back by stop()
                del self._queues[key]

    async def _handle(self, stored: StoredUpdate) -> None:
        failed = False
        front = self._fronts[stored.messenger]
        if stored.again and await self._applied_before(stored):
            logger.info(
                "update %s was applied before its worker died: marked done", stored.update_id
            )
            await self._inbox.finish(stored.update_id, messenger=stored.messenger)
            return
        with dialogue_unit() as unit:
            if isinstance(front.dp.fsm.storage, DialogueRedisStorage):
                # Asked under the user's lock, where the answer holds: a worker whose claims
                # were taken while it was alive but slow (its heartbeat late) still holds this
                # update in its queue, and the taker may have applied it already, or the
                # reverse. On the scaled layout only.
                unit.recheck = partial(self._taken_or_applied, stored, unit)
            try:
                update = stored.update or Update.model_validate(
                    stored.payload, context={"bot": front.bot}
                )
                await front.feed(front.dp, front.bot, update)
            except Exception as exc:
                failed = True
                # Ids and the type; the trace without a message that could quote the update (a
                # validation error of the raw update would) or a text (Telegram's description).
                logger.error(
                    "update %s failed: %s",
                    stored.update_id,
                    type(exc).__name__,
                    exc_info=safe_exc_info(exc),
                )
            if unit.taken_away:  # not marked: the peer that holds it now finishes it
                logger.info(
                    "update %s was taken over by another worker meanwhile: left to it",
                    stored.update_id,
                )
                return
            if unit.applied_before:
                logger.info(
                    "update %s was applied by another worker meanwhile: marked done",
                    stored.update_id,
                )
            try:
                await self._finish(stored, unit, failed=failed)
            except SQLAlchemyError:
                # Still claimed by us: handled again only if this worker dies (at least once).
                logger.exception("update %s handled but not marked finished", stored.update_id)
            except Exception as exc:  # noqa: BLE001 - the dialogue could not be written (Redis)
                # Its changes are lost; the update is closed as failed so the person's next
                # updates are not held behind it.
                logger.error(
                    "update %s: dialogue not saved: %s", stored.update_id, type(exc).__name__
                )
                with contextlib.suppress(SQLAlchemyError):
                    await self._inbox.finish(
                        stored.update_id, messenger=stored.messenger, failed=True
                    )

    async def _taken_or_applied(self, stored: StoredUpdate, unit: DialogueUnit) -> bool:
        """Under the user's lock: is the update applied already (the dialogue's mark names it),
        or no longer this worker's (a peer took it over, and handled it or will)? The mark
        alone names only the last update applied: a peer may have handled this one and the
        person's next one since, so the inbox row is asked too."""
        if await self._applied_before(stored):
            return True
        if await self._inbox.still_mine(stored.update_id, messenger=stored.messenger):
            return False
        unit.taken_away = True
        return True

    async def _applied_before(self, stored: StoredUpdate) -> bool:
        """Redis only: the dialogue is written before the inbox mark, so a worker may have died
        (or been taken for dead) between the two; the dialogue then says which update it holds.
        Exactly this update: one applied out of turn meanwhile (two of a person's messages sent
        at once can reach two workers before either is stored) is no reason to drop this one
        unanswered. (The SQL storage writes both in one transaction.)"""
        storage = self._fronts[stored.messenger].dp.fsm.storage
        if not isinstance(storage, DialogueRedisStorage):
            return False
        try:
            applied = await storage.last_applied(stored.order_key, stored.messenger)
            return applied == stored.update_id
        except Exception as exc:  # noqa: BLE001 - unknown: handle it again rather than drop it
            logger.warning("update %s: Redis not asked: %s", stored.update_id, type(exc).__name__)
            return False

    async def _finish(self, stored: StoredUpdate, unit: DialogueUnit, *, failed: bool) -> None:
        storage = self._fronts[stored.messenger].dp.fsm.storage
        finish = partial(
            self._inbox.finish, stored.update_id, messenger=stored.messenger, failed=failed
        )
        if not isinstance(storage, WriteBehindStorage) or not unit.changes():
            await finish()
        elif isinstance(storage, SQLStorage):  # the dialogue and the mark: one transaction
            await finish(also=lambda session: storage.save(unit, session))
        elif isinstance(storage, DialogueRedisStorage):  # the dialogue, with the update's id
            await storage.save(
                unit, applied=(stored.order_key, stored.update_id), messenger=stored.messenger
            )
            await finish()
        else:
            await storage.save(unit)
            await finish()

    async def start(self) -> None:
        """Take over what was left unfinished, then keep claims fresh and sweep periodically."""
        await self.sweep(first=True)
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def sweep(self, *, first: bool = False) -> None:
        await self._inbox.heartbeat()
        self._settled.clear()
        try:
            taken = await self._inbox.take_over(
                predecessor=self._predecessor if first else None,
                only_if_dead=self._predecessor_is_derived,
            )
            for stored in taken:
                self.submit(stored)
        finally:
            self._settled.set()
        await self._inbox.purge_finished()

    async def _sweep_forever(self) -> None:
        interval = max(self._inbox.stale_after.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                logger.exception("inbox sweep failed; trying again in %.1f s", interval)

    async def stop(self, grace_seconds: float) -> None:
        """Finish what is being handled (within the grace period); give back the rest."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        runners = list(self._runners.values())
        if runners:
            _done, unfinished = await asyncio.wait(runners, timeout=grace_seconds)
            if unfinished:
                logger.warning("stopping with %s updates unfinished", len(self._known))
                leftovers = list(self._known)
                for task in unfinished:
                    task.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)
                with contextlib.suppress(SQLAlchemyError):
                    for messenger in {messenger for messenger, _ in leftovers}:
                        await self._inbox.release(
                            [i for m, i in leftovers if m is messenger], messenger=messenger
                        )


async def _interruptible_sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def poll(
    bot: Bot,
    inbox: InboxService,
    processor: UpdateProcessor,
    stop: asyncio.Event,
    allowed_updates: list[str],
    *,
    messenger: Messenger = Messenger.TELEGRAM,
    offset: int | None = None,
) -> None:
    """getUpdates → store → acknowledge (the next call's offset) → handle. ``messenger``: whose
    bot it is (MAX: aiogram-max's session moves its marker on only when acknowledged, see
    bot.messengers.max_adapter); ``offset``: where to go on (after the last update stored)."""
    backoff = 1.0
    while not stop.is_set():
        try:
            updates = await bot(
                GetUpdates(offset=offset, timeout=POLLING_TIMEOUT, allowed_updates=allowed_updates),
                request_timeout=POLLING_TIMEOUT + 10,
            )
            payloads = [
                u.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
                for u in updates
            ]
            stored = await inbox.store(payloads, messenger=messenger)
        except TelegramRetryAfter as error:
            await _interruptible_sleep(stop, error.retry_after)
            continue
        except (TelegramNetworkError, TelegramAPIError, SQLAlchemyError, OSError) as error:
            logger.warning(
                "polling %s: %s; again in %.0f s", messenger, type(error).__name__, backoff
            )
            await _interruptible_sleep(stop, backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 1.0
        if updates:
            offset = updates[-1].update_id + 1
        parsed = {u.update_id: u for u in updates}
        for item in stored:
            item.update = parsed.get(item.update_id)  # read once: no second validation
            processor.submit(item)


def health_check(sessions: SessionFactory, redis: Any | None) -> HealthCheck:
    """Reachability of the database and of Redis (when configured): the webhook's /healthz."""
    return reachability(sessions, redis)


def webhook_app(
    settings: Settings,
    inbox: InboxService,
    processor: UpdateProcessor,
    health: HealthCheck,
) -> web.Application:
    """The webhook endpoint (secret checked, update stored before the 200) and ``/healthz``."""
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value().encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            payload = await request.json()
            int(payload["update_id"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        try:
            stored = await inbox.store([payload])
        except SQLAlchemyError:
            logger.exception("webhook: the update could not be stored; Telegram will retry")
            return web.json_response({"ok": False}, status=503)
        for item in stored:
            processor.submit(item)
        return web.json_response({"ok": True})

    async def healthz(_request: web.Request) -> web.Response:
        report = await health()
        healthy = all(value in ("ok", "not configured") for value in report.values())
        return web.json_response(report, status=200 if healthy else 503)

    app = web.Application()
    app.router.add_post(settings.webhook_route, receive)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(
    settings: Settings,
    bot: Bot,
    dp: Dispatcher,
    sessions: SessionFactory,
    health: HealthCheck,
    *,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    others: Sequence[Front] = (),
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``): startup, receive and handle, graceful shutdown.

    ``others``: the fronts of other messengers (MAX), long-polled by this worker in both modes
    into the same inbox (every worker with them polls: an update two workers fetch is stored
    once, and the inbox keeps each person's order across workers, as for webhook workers)."""
    stop = stop or asyncio.Event()
    if handle_signals:
        stop_on_signals(stop)
    name = settings.worker_name or stable_worker_name(
        settings.webhook_port if settings.webhook else None
    )
    inbox = InboxService(
        sessions,
        new_worker_id(name),
        stale_after=timedelta(seconds=settings.lock_timeout_seconds),
        keep_finished=timedelta(hours=settings.inbox_keep_hours),
        messengers=(Messenger.TELEGRAM, *(front.messenger for front in others)),
    )
    processor = UpdateProcessor(
        dp,
        bot,
        inbox,
        predecessor=name,
        predecessor_is_derived=settings.worker_name is None,
        check_order_each=settings.webhook,
        others=others,
    )
    allowed_updates = dp.resolve_used_update_types()
    workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data}
    await dp.emit_startup(bot=bot, **workflow)
    runner: web.AppRunner | None = None
    pollers: list[asyncio.Task[None]] = []
    try:
        await processor.start()
        for front in others:
            last = await inbox.last_stored(front.messenger)
            pollers.append(
                asyncio.create_task(
                    poll(
                        front.bot,
                        inbox,
                        processor,
                        stop,
                        front.dp.resolve_used_update_types(),
                        messenger=front.messenger,
                        offset=None if last is None else last + 1,
                    )
                )
            )
            logger.info("worker %s polls %s for updates", inbox.worker_id, front.messenger)
        if settings.webhook:
            runner = web.AppRunner(webhook_app(settings, inbox, processor, health), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
            assert settings.webhook_url is not None and settings.webhook_secret is not None
            await bot.set_webhook(
                settings.webhook_url,
                secret_token=settings.webhook_secret.get_secret_value(),
                max_connections=settings.webhook_max_connections,
                allowed_updates=allowed_updates,
            )
            logger.info(
                "worker %s receives updates on %s:%s",
                inbox.worker_id,
                settings.webhook_host,
                settings.webhook_port,
            )
            await stop.wait()
        else:
            await bot.delete_webhook()
            logger.info("worker %s polls for updates", inbox.worker_id)
            pollers.append(asyncio.create_task(poll(bot, inbox, processor, stop, allowed_updates)))
            await stop.wait()
    finally:
        for poller in pollers:
            poller.cancel()
        for outcome in await asyncio.gather(*pollers, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.error("polling had stopped: %s", type(outcome).__name__)
        if runner is not None:
            await runner.cleanup()  # no new updates: Telegram sends them to the other workers
        await processor.stop(settings.shutdown_grace_seconds)
        await dp.emit_shutdown(bot=bot, **workflow)
