"""Health and metrics of one process: ``GET /healthz`` and ``GET /metrics`` (Prometheus text
format) on ``METRICS_HOST:METRICS_PORT``, in every mode (polling, webhook workers, ``python -m
scheduler``).

What is counted where:

- updates handled / unhandled / failed by type, and the handler latency: an outer middleware of
  the Dispatcher's ``update`` observer (``Metrics.instrument_dispatcher``);
- Bot API errors by method and code: an aiogram request middleware that only observes
  (``Metrics.instrument_bot``);
- the outbox (pending rows, age of the oldest due row, failed rows by code and recipient), the
  inbox (backlog, oldest age) and the scheduler lease (holder, time left): read from the database
  at each scrape, so every process shows the same picture;
- the scheduler in this process: whether it holds the lease, and its last outbox tick.

Labels carry method names, update types and short codes only: never ids or texts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import case, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.services.clock import Clock, utc_now
from bot.storage.db import SessionFactory
from bot.storage.inbox_models import InboxStatus, InboxUpdate
from bot.storage.outbox_models import OutboxMessage, OutboxStatus
from bot.storage.scheduler_models import Lease

if TYPE_CHECKING:
    from scheduler.runner import SchedulerRunner

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

#: Latency buckets of update handling, in seconds (a reply is expected well under a second).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def api_error_code(error: BaseException) -> str:
    """The HTTP-like code of a Bot API failure ("400", "403", "429", "5xx", "network")."""
    for kind, code in (
        (TelegramRetryAfter, "429"),
        (TelegramForbiddenError, "403"),
        (TelegramUnauthorizedError, "401"),
        (TelegramNotFound, "404"),
        (TelegramConflictError, "409"),
        (TelegramEntityTooLarge, "413"),
        (TelegramServerError, "5xx"),
        (TelegramNetworkError, "network"),
        (TelegramBadRequest, "400"),
    ):
        if isinstance(error, kind):
            return code
    return "other"


class ApiErrorMiddleware(BaseRequestMiddleware):
    """Counts failed Bot API calls by method and code; the call and its error pass unchanged."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except (TelegramAPIError, TimeoutError) as error:
            name = getattr(method, "__api_method__", type(method).__name__)
            code = "network" if isinstance(error, TimeoutError) else api_error_code(error)
            self._counter.labels(method=name, code=code).inc()
            raise


class UpdateMetricsMiddleware:
    """Outer middleware of ``dp.update``: the outcome and the handling time of each update."""

    def __init__(self, updates: Counter, latency: Histogram) -> None:
        self._updates = updates
        self._latency = latency

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        kind = update_type(event)
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await handler(event, data)
            outcome = "unhandled" if result is UNHANDLED else "handled"
            return result
        finally:
            self._latency.labels(type=kind).observe(time.perf_counter() - started)
            self._updates.labels(type=kind, outcome=outcome).inc()


def update_type(event: TelegramObject) -> str:
    if not isinstance(event, Update):
        return type(event).__name__
    try:
        return event.event_type
    except LookupError:  # a type newer than this aiogram
        return "unknown"


@dataclass
class Snapshot:
    """What the database says at one scrape."""

    outbox_pending: int = 0
    outbox_oldest_due_age: float = 0.0
    outbox_failed: dict[tuple[str, str], int] = field(default_factory=dict)
    inbox_backlog: int = 0
    inbox_oldest_age: float = 0.0
    lease_holder: str | None = None
    lease_expires_in: float = 0.0


class Metrics:
    """The metrics of one process, in a registry of its own (a test makes a fresh one)."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter(
            "oblako_updates",
            "Updates handled by this process, by type and outcome (handled/unhandled/failed)",
            ["type", "outcome"],
            registry=r,
        )
        self.update_seconds = Histogram(
            "oblako_update_handling_seconds",
            "Time spent handling one update (all middlewares and the handler)",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_errors = Counter(
            "oblako_bot_api_errors",
            "Failed Bot API calls of this process, by method and code",
            ["method", "code"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "oblako_outbox_pending_rows", "Outbox rows waiting to be sent", registry=r
        )
        self.outbox_oldest_due = Gauge(
            "oblako_outbox_oldest_due_age_seconds",
            "How long the oldest due pending outbox row has been due (0: none)",
            registry=r,
        )
        self.outbox_failed = Gauge(
            "oblako_outbox_failed_rows",
            "Outbox rows that failed for good (kept RETENTION_DAYS), by code and recipient",
            ["code", "recipient"],
            registry=r,
        )
        self.inbox_backlog = Gauge(
            "oblako_inbox_backlog", "Updates stored but not handled yet", registry=r
        )
        self.inbox_oldest = Gauge(
            "oblako_inbox_oldest_age_seconds",
            "Age of the oldest update not handled yet (0: none)",
            registry=r,
        )
        self.lease_holder = Gauge(
            "oblako_scheduler_lease_holder",
            "1 for the process holding the scheduler lease (by holder id)",
            ["holder"],
            registry=r,
        )
        self.lease_expires_in = Gauge(
            "oblako_scheduler_lease_expires_in_seconds",
            "Time left on the scheduler lease (negative: expired, nobody renews it)",
            registry=r,
        )
        self.scheduler_active = Gauge(
            "oblako_scheduler_active", "1 when this process runs the scheduler's jobs", registry=r
        )
        self.last_tick = Gauge(
            "oblako_scheduler_last_tick_timestamp_seconds",
            "Unix time of this process's last outbox tick (0: none yet)",
            registry=r,
        )
        self.database_up = Gauge(
            "oblako_database_up", "1 when the last scrape could read the database", registry=r
        )
        self._scheduler: SchedulerRunner | None = None
        self._known_failed: set[tuple[str, str]] = set()
        self._known_holders: set[str] = set()

    # ---------------------------------------------------------------------- wiring
    def instrument_bot(self, bot: Bot) -> None:
        bot.session.middleware(ApiErrorMiddleware(self.api_errors))

    def instrument_dispatcher(self, dp: Dispatcher) -> None:
        dp.update.outer_middleware(UpdateMetricsMiddleware(self.updates, self.update_seconds))
        dp["metrics"] = self

    def watch_scheduler(self, runner: SchedulerRunner) -> None:
        self._scheduler = runner

    # --------------------------------------------------------------------- scrape
    async def snapshot(self, sessions: SessionFactory) -> Snapshot:
        now = self.clock()
        found = Snapshot()
        async with sessions() as session:
            o = OutboxMessage
            recipient = case((o.chat_id < 0, "staff"), else_="patient")
            # One statement: SQLite reads outside a transaction, so a row going from
            # pending to failed between two reads would be counted as both.
            rows = await session.execute(
                select(
                    o.status,
                    o.last_error,
                    recipient,
                    func.count(),
                    func.min(case((o.due_at <= now, o.due_at))),
                )
                .where(
                    o.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED))
                )
                .group_by(o.status, o.last_error, recipient)
            )
            oldest_due: datetime | None = None
            for status, code, who, count, due in rows.all():
                if status == OutboxStatus.FAILED:
                    key = (code or "unknown", str(who))
                    found.outbox_failed[key] = found.outbox_failed.get(key, 0) + int(count)
                    continue
                found.outbox_pending += int(count)
                if status == OutboxStatus.PENDING and due is not None:
                    oldest_due = due if oldest_due is None else min(oldest_due, due)
            found.outbox_oldest_due_age = _age(now, oldest_due)
            i = InboxUpdate
            backlog, oldest = (
                await session.execute(
                    select(func.count(), func.min(i.received_at)).where(
                        i.status == InboxStatus.PENDING
                    )
                )
            ).one()
            found.inbox_backlog = int(backlog or 0)
            found.inbox_oldest_age = _age(now, oldest)
            lease = await session.scalar(select(Lease).where(Lease.name == "scheduler"))
            if lease is not None:
                found.lease_holder = lease.holder
                expires = lease.expires_at
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=now.tzinfo)
                found.lease_expires_in = (expires - now).total_seconds()
        return found

    def apply(self, found: Snapshot) -> None:
        self.outbox_pending.set(found.outbox_pending)
        self.outbox_oldest_due.set(found.outbox_oldest_due_age)
        for key in self._known_failed - set(found.outbox_failed):
            self.outbox_failed.labels(code=key[0], recipient=key[1]).set(0)
        for (code, recipient), count in found.outbox_failed.items():
            self.outbox_failed.labels(code=code, recipient=recipient).set(count)
        self._known_failed |= set(found.outbox_failed)
        self.inbox_backlog.set(found.inbox_backlog)
        self.inbox_oldest.set(found.inbox_oldest_age)
        for holder in self._known_holders - {found.lease_holder}:
            self.lease_holder.remove(holder)
        self._known_holders.clear()
        if found.lease_holder is not None:
            self.lease_holder.labels(holder=found.lease_holder).set(1)
            self._known_holders.add(found.lease_holder)
        self.lease_expires_in.set(found.lease_expires_in)

    def _apply_scheduler(self) -> None:
        runner = self._scheduler
        if runner is None:
            return
        self.scheduler_active.set(1 if runner.active else 0)
        tick = runner.last_tick
        self.last_tick.set(tick.timestamp() if tick is not None else 0)

    async def render(self, sessions: SessionFactory) -> bytes:
        """The Prometheus text of this process, with the database read now."""
        try:
            async with asyncio.timeout(5):
                self.apply(await self.snapshot(sessions))
            self.database_up.set(1)
        except (TimeoutError, SQLAlchemyError, OSError) as error:
            log.warning("metrics: the database could not be read: %s", type(error).__name__)
            self.database_up.set(0)
        self._apply_scheduler()
        return generate_latest(self.registry)


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


HealthCheck = Callable[[], Awaitable[dict[str, str]]]


def reachability(sessions: SessionFactory, redis: Any | None = None) -> HealthCheck:
    """Reachability of the database and of Redis (when configured)."""

    async def check() -> dict[str, str]:
        report: dict[str, str] = {}
        try:
            async with asyncio.timeout(3), sessions() as session:
                await session.execute(text("SELECT 1"))
            report["database"] = "ok"
        except (TimeoutError, SQLAlchemyError, OSError):
            report["database"] = "unreachable"
        if redis is None:
            report["redis"] = "not configured"
        else:
            try:
                async with asyncio.timeout(3):
                    await redis.ping()
                report["redis"] = "ok"
            except Exception:  # noqa: BLE001 - any failure means "unreachable"
                report["redis"] = "unreachable"
        return report

    return check


def process_health(
    sessions: SessionFactory, redis: Any | None = None, *, mode: str = "polling"
) -> HealthCheck:
    """Reachability of the database and of Redis (when configured), and the process's mode."""
    reachable = reachability(sessions, redis)

    async def check() -> dict[str, str]:
        return {"mode": mode, **await reachable()}

    return check


def healthy(report: dict[str, str]) -> bool:
    return all(report[key] in ("ok", "not configured") for key in ("database", "redis"))


def observability_app(
    metrics: Metrics, sessions: SessionFactory, health: HealthCheck
) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        report = await health()
        return web.json_response(report, status=200 if healthy(report) else 503)

    async def scrape(_request: web.Request) -> web.Response:
        body = await metrics.render(sessions)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    return app


class ObservabilityServer:
    """The ``/healthz`` + ``/metrics`` server of a process (started only with METRICS_PORT)."""

    def __init__(
        self, metrics: Metrics, sessions: SessionFactory, health: HealthCheck, host: str, port: int
    ) -> None:
        self._app = observability_app(metrics, sessions, health)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("health and metrics on http://%s:%s/metrics", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_observability(
    metrics: Metrics,
    sessions: SessionFactory,
    health: HealthCheck,
    host: str,
    port: int | None,
) -> ObservabilityServer | None:
    """Start the server when a port is configured (0: any free port, logged)."""
    if port is None:
        return None
    server = ObservabilityServer(metrics, sessions, health, host, port)
    await server.start()
    return server
