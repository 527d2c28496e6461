"""How a process starts and stops, the same for ``python -m bot`` and ``python -m scheduler``:
the settings and logging, the catalog with the staff chats applied (placeholder ids refused),
then the database migrated, the services, the Bot and its metrics, the health and metrics
endpoints, the signals that stop it, and everything closed in the reverse order.

Heavy modules (aiogram, SQLAlchemy, the services) are imported only once the configuration
is known to be good: a mistake in the settings is reported at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.config import Settings, SettingsError, load_settings
from bot.logging_setup import configure_logging

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.utils.i18n import I18n
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.app import Services
    from bot.catalog import Catalog
    from bot.observability import HealthCheck, Metrics


class StartRefused(Exception):
    """The settings or the catalog do not allow a start; the message says what to fix."""

    exit_status = 2

    def report(self) -> int:
        print(self, file=sys.stderr)
        return self.exit_status


def configure(
    *, log_level: str | None = None, webhook: bool = False, check_webhook: bool = False
) -> Settings:
    """The settings (environment or .env, with the command line's overrides), logging set up."""
    overrides: dict[str, object] = {"log_level": log_level} if log_level else {}
    if webhook:
        overrides["webhook"] = True
    try:
        settings = load_settings(**overrides)
        if check_webhook and settings.webhook:
            settings.check_webhook()
        if settings.max_bot_token is not None:  # patients on MAX: aiogram-max must be there
            from bot.messengers import require_max_support

            require_max_support()
    except SettingsError as exc:
        raise StartRefused(str(exc)) from exc
    configure_logging(
        settings.log_level,
        pseudonym_key=settings.pseudonym_secret,
        plain_ids=settings.log_plain_ids,
    )
    return settings


def load_catalog_for(settings: Settings) -> Catalog:
    """The catalog (CATALOG_PATH or the shipped one) with STAFF_CHAT_IDS applied; refused
    while a staff chat still has the catalog's placeholder id."""
    from bot.catalog import CatalogError, default_catalog_path, load_catalog
    from bot.i18n import create_i18n
    from bot.startup import configured_catalog as with_staff_chats
    from bot.startup import refuse_placeholders

    try:
        catalog = load_catalog(settings.catalog_path or default_catalog_path())
        catalog = with_staff_chats(catalog, settings)
        refuse_placeholders(catalog, settings, create_i18n(settings.default_locale))
    except (CatalogError, SettingsError) as exc:
        raise StartRefused(str(exc)) from exc
    return catalog


def run_until_stopped(main: Coroutine[Any, Any, None]) -> int:
    """Run the process's main coroutine; a Ctrl+C during start or stop is not a traceback."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)
    return 0


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop``: the process finishes its work in flight, then exits."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every process runs on, built by ``open_runtime``."""

    settings: Settings
    catalog: Catalog
    engine: AsyncEngine
    i18n: I18n
    services: Services
    bot: Bot
    metrics: Metrics


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, catalog: Catalog) -> AsyncIterator[Runtime]:
    """The database (migrated to the latest schema), the services, the Bot (its requests
    counted in the metrics); the Bot's session and the engine closed on the way out."""
    from bot.app import Services, create_bot
    from bot.i18n import create_i18n
    from bot.observability import Metrics
    from bot.services.clock import utc_now
    from bot.storage.db import create_engine, migrate

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        i18n = create_i18n(settings.default_locale)
        services = Services.create(settings, catalog, engine, i18n, utc_now)
        bot = create_bot(settings)
        try:
            metrics = Metrics()
            metrics.instrument_bot(bot)
            yield Runtime(settings, catalog, engine, i18n, services, bot, metrics)
        finally:
            await bot.session.close()
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def observed(runtime: Runtime, health: HealthCheck) -> AsyncIterator[None]:
    """GET /healthz and /metrics while the process runs (when METRICS_PORT is set)."""
    from bot.observability import start_observability

    settings = runtime.settings
    server = await start_observability(
        runtime.metrics,
        runtime.services.sessions,
        health,
        settings.metrics_host,
        settings.metrics_port,
    )
    try:
        yield
    finally:
        if server is not None:
            await server.stop()
