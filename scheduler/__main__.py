"""Composition root: ``python -m scheduler`` runs the scheduler as its own process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from bot import process

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.config import Settings

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
    from bot.app import build_outbox
    from bot.observability import process_health
    from bot.startup import log_staff_chats
    from scheduler.runner import build_runner

    try:
        async with process.open_runtime(settings, catalog) as runtime:
            services = runtime.services
            max_bot = None
            if settings.max_bot_token is not None:  # rows to MAX patients go out by the MAX bot
                from bot.messengers.routing import attach_max_delivery

                max_bot = await attach_max_delivery(settings, runtime.bot)
            runner = build_runner(services, build_outbox(services, runtime.bot))
            runtime.metrics.watch_scheduler(runner)
            health = process_health(services.sessions, mode="scheduler")
            async with process.observed(runtime, health):
                stopping = asyncio.Event()
                process.stop_on_signals(stopping)
                try:
                    logger.info(
                        "scheduler %s started (standby until it holds the lease)",
                        runner.lease.holder,
                    )
                    await log_staff_chats(runtime.bot, catalog, settings, runtime.i18n)
                    runner.start()
                    await stopping.wait()
                finally:
                    await runner.stop()
                    if max_bot is not None:
                        await max_bot.session.close()
    finally:
        logger.info("scheduler stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = process.configure(log_level=args.log_level)
        catalog = process.load_catalog_for(settings)
    except process.StartRefused as refused:
        return refused.report()
    return process.run_until_stopped(run(settings, catalog))


if __name__ == "__main__":
    sys.exit(main())
