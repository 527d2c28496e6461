"""Composition root: ``python -m bot`` runs the bot with long polling on the embedded default."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot import process

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.config import Settings

logger = logging.getLogger("bot")

DESCRIPTION = """\
Telegram bot of the telemedicine programme «Облако здоровья».

Runs with long polling, or as a webhook worker (--webhook or WEBHOOK=true; several
workers may serve one webhook behind a reverse proxy). Settings come from the
environment or a .env file in the current directory (see .env.example): BOT_TOKEN
(required), TELEGRAM_API_URL, TELEGRAM_API_LOCAL, DATABASE_URL (default: SQLite under
./data/), REDIS_URL, DUTY_CHAT_ID, COORDINATOR_IDS, FILES_DIR, CATALOG_PATH,
DEFAULT_LOCALE, LOG_LEVEL, MAX_BOT_TOKEN and MAX_API_BASE (patients on MAX too;
Python >= 3.12 with the `max` extra), WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_HOST, WEBHOOK_PORT,
STAFF_CHAT_IDS (center=chat id pairs, winning over the catalog), METRICS_HOST,
METRICS_PORT (GET /healthz and /metrics for Prometheus; unset: not served).
Also runs as `python -m bot`. The database is created and migrated to the latest schema on
start. The staff chats are checked at start (the catalog's placeholder ids are refused;
other problems are logged) and by --check-config, which names what to click in Telegram.
Every update (Telegram's or MAX's) is stored before it is acknowledged, and handled once.
SIGINT/SIGTERM stop the bot after the updates being handled are finished.
"""


#: Net allocations between two collections of the youngest generation (CPython's default: 700).
#: An update allocates and frees thousands of objects (pydantic models, rows, dicts); at 700 the
#: collector ran about 160 times a second under load, some 6 % of the bot's CPU, for garbage that
#: reference counting frees anyway. Cycles are still collected, a little later.
GC_YOUNG_THRESHOLD = 20_000


def settle_memory() -> None:
    """What start-up built (aiogram's hundreds of models, the routers, SQLAlchemy's mappings)
    lives as long as the process: frozen out of the garbage collector's reach, so a collection
    walks only what updates allocate (it walked everything, several times a second under load).
    The youngest generation is collected less often (``GC_YOUNG_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="oblako-bot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the settings and the catalog, print a summary and exit",
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates by webhook (WEBHOOK_URL, WEBHOOK_SECRET) instead of long polling",
    )
    parser.add_argument(
        "--backup",
        metavar="DIR",
        type=Path,
        help="write a consistent copy of the SQLite database and FILES_DIR into DIR/oblako-<time>/"
        " (safe while the bot runs) and exit",
    )
    parser.add_argument("--log-level", help="override LOG_LEVEL (DEBUG, INFO, WARNING, ERROR)")
    return parser.parse_args(argv)


async def check_config(settings: Settings, catalog: Catalog) -> int:
    """The staff chats checked live: each named with what to click; 1 when any is not ready."""
    from bot.app import create_bot
    from bot.i18n import create_i18n
    from bot.startup import check_staff_chats

    i18n = create_i18n(settings.default_locale)
    bot = create_bot(settings)
    try:
        reports, lines = await check_staff_chats(bot, catalog, settings, i18n)
    finally:
        await bot.session.close()
    print("\n".join(lines))
    if any(report.errors for report in reports):
        print("configuration NOT ok: fix the staff chats above, then run --check-config again")
        return 1
    return 0


async def run(settings: Settings, catalog: Catalog) -> None:
    from bot import observability
    from bot.dispatcher import create_dispatcher, set_commands, set_max_commands
    from bot.fsm.backends import create_dialogue_backend
    from bot.runner import health_check, serve
    from bot.startup import log_staff_chats, set_descriptions
    from scheduler.runner import build_runner

    settings.files_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with process.open_runtime(settings, catalog) as runtime:
            services, bot, metrics = runtime.services, runtime.bot, runtime.metrics
            dialogues = create_dialogue_backend(settings, services.sessions)
            dp = create_dispatcher(services, bot, dialogues.storage, dialogues.isolation)
            metrics.instrument_dispatcher(dp)
            in_flight = dp["in_flight"]
            max_front = None
            if settings.max_bot_token is not None:  # patients on MAX too (bot.messengers)
                from bot.messengers.max_front import MaxFront

                max_front = await MaxFront.create(
                    settings, services, dialogues.storage, dialogues.isolation, telegram_bot=bot
                )

            # The scheduler runs here only while this process holds the database lease (a
            # standby otherwise); with SCHEDULER_EMBEDDED=false `python -m scheduler` runs it.
            scheduler = (
                build_runner(services, dp["outbox"]) if settings.scheduler_embedded else None
            )
            if scheduler is not None:
                metrics.watch_scheduler(scheduler)
            mode = "webhook" if settings.webhook else "polling"

            async def on_startup() -> None:
                if scheduler is not None:
                    scheduler.start()
                if max_front is not None:
                    await max_front.start()

            async def on_shutdown() -> None:
                if max_front is not None:
                    await max_front.stop()
                if not await in_flight.drained(settings.shutdown_grace_seconds):
                    logger.warning("stopping with %s updates still in flight", in_flight.in_flight)
                if scheduler is not None:
                    await scheduler.stop()

            dp.startup.register(on_startup)
            dp.shutdown.register(on_shutdown)
            health = observability.process_health(services.sessions, dialogues.redis, mode=mode)
            async with process.observed(runtime, health):
                me = await bot.get_me()
                logger.info("bot id=%s started (%s)", me.id, mode)
                await set_commands(bot, runtime.i18n, settings.coordinator_ids)
                if max_front is not None:
                    await set_max_commands(max_front.bot, runtime.i18n)
                await set_descriptions(bot, runtime.i18n)
                await log_staff_chats(bot, catalog, settings, runtime.i18n)
                settle_memory()
                await serve(
                    settings,
                    bot,
                    dp,
                    services.sessions,
                    health_check(services.sessions, dialogues.redis),
                    # MAX's updates: polled into the same inbox, handled by the same runner
                    others=[max_front.front()] if max_front is not None else [],
                )
    finally:
        logger.info("bot stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = process.configure(
            log_level=args.log_level, webhook=args.webhook, check_webhook=True
        )
        if args.backup is not None:
            return make_backup(settings, args.backup)
        catalog = process.load_catalog_for(settings)
    except process.StartRefused as refused:
        return refused.report()
    if args.check_config:
        if asyncio.run(check_config(settings, catalog)):
            return 1
        print(
            f"configuration ok: {len(catalog.centers)} centers, {len(catalog.regions)} regions, "
            f"database {settings.database_url.split('://')[0]}"
        )
        return 0
    return process.run_until_stopped(run(settings, catalog))


def make_backup(settings: Settings, destination: Path) -> int:
    from bot.backup import BackupError, backup

    try:
        target = backup(settings.database_url, settings.files_dir, destination)
    except (BackupError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"backup written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
