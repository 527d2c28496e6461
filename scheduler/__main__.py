"""Composition root: ``python -m scheduler`` runs the scheduler as its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING

from bot.config import Settings, SettingsError, load_settings
from bot.logging_setup import configure_logging

if TYPE_CHECKING:
    from bot.catalog import Catalog

logger = logging.getLogger("scheduler")

DESCRIPTION = """\
The scheduler of the «Облако здоровья» bot as its own process: it delivers the outbox,
escalates overdue applications, sends the coordinators' digest and purges old data.

Run it when the bot runs as several webhook workers (set SCHEDULER_EMBEDDED=false for them).
Only the process holding the lease in the database runs the jobs; start a second one as a hot
standby: it takes over within SCHEDULER_LEASE_SECONDS (+ a third of it) after the first dies.
Settings are the bot's (environment or .env; see .env.example); with METRICS_PORT set it serves
GET /healthz and /metrics. Also runs as `python -m scheduler`. SIGINT/SIGTERM stop it after
the delivery in flight, releasing the lease for the standby.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="oblako-scheduler",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", help="override LOG_LEVEL (DEBUG, INFO, WARNING, ERROR)")
    return parser.parse_args(argv)


async def run(settings: Settings, catalog: Catalog) -> None:
    from bot.app import Services, build_outbox, create_bot
    from bot.i18n import create_i18n
    from bot.observability import Metrics, process_health, start_observability
    from bot.services.clock import utc_now
    from bot.startup import log_staff_chats
    from bot.storage.db import create_engine, migrate
    from scheduler.runner import build_runner

    engine = create_engine(settings.database_url)
    await migrate(engine)
    i18n = create_i18n(settings.default_locale)
    services = Services.create(settings, catalog, engine, i18n, utc_now)
    bot = create_bot(settings)
    max_bot = None
    if settings.max_bot_token is not None:  # rows to MAX patients go out through the MAX bot
        from bot.messengers.max_front import attach_max_delivery

        max_bot = await attach_max_delivery(settings, bot)
    metrics = Metrics()
    metrics.instrument_bot(bot)
    runner = build_runner(services, build_outbox(services, bot))
    metrics.watch_scheduler(runner)
    observability = await start_observability(
        metrics,
        services.sessions,
        process_health(services.sessions, mode="scheduler"),
        settings.metrics_host,
        settings.metrics_port,
    )

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        logger.info("scheduler %s started (standby until it holds the lease)", runner.lease.holder)
        await log_staff_chats(bot, catalog, settings, i18n)
        runner.start()
        await stopping.wait()
    finally:
        if observability is not None:
            await observability.stop()
        await runner.stop()
        await bot.session.close()
        if max_bot is not None:
            await max_bot.session.close()
        await engine.dispose()
        logger.info("scheduler stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(**({"log_level": args.log_level} if args.log_level else {}))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        pseudonym_key=settings.pseudonym_secret,
        plain_ids=settings.log_plain_ids,
    )
    from bot.catalog import CatalogError, default_catalog_path, load_catalog

    try:
        catalog = load_catalog(settings.catalog_path or default_catalog_path())
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    from bot.i18n import create_i18n
    from bot.startup import configured_catalog, refuse_placeholders

    try:
        catalog = configured_catalog(catalog, settings)
        refuse_placeholders(catalog, settings, create_i18n(settings.default_locale))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, catalog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
