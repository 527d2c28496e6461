"""How a broadcast runs at Telegram's rates, against the fake Bot API with the real clock: the
time to reach N patients, the rate achieved, and how long a personal notification written in the
middle of the broadcast waits (it should not wait for the broadcast).

    python -m benchmarks.broadcast --patients 600 --global-rate 30 --broadcast-rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Services, create_bot
from bot.catalog import default_catalog_path, load_catalog
from bot.config import Settings
from bot.dispatcher import create_dispatcher
from bot.i18n import create_i18n
from bot.services.broadcasts import Audience, AudienceKind, Content, ContentKind
from bot.services.clock import utc_now
from bot.services.outbox import Outbox, OutboxSender
from bot.storage.db import create_engine, migrate
from bot.storage.models import Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus
from fakegram.server import FakeTelegram

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # noqa: S105 - the fake's test token
FIRST_ID = 900_000_001


async def pending(services: Services) -> int:
    async with services.sessions() as session:
        found = await session.scalar(
            select(func.count()).where(
                OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
            )
        )
    return int(found or 0)


def personal_sent(server: FakeTelegram) -> bool:
    return any(c.params.get("text") == "personal" for c in server.calls("sendMessage"))


async def run(patients: int, global_rate: float, broadcast_rate: float, tick: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram() as server:
            server.add_bot(TOKEN)
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                bot_token=TOKEN,
                telegram_api_url=server.base_url,
                database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                files_dir=Path(tmp) / "files",
                outbox_global_per_second=global_rate,
                broadcast_per_second=broadcast_rate,
            )
            engine = create_engine(settings.database_url)
            await migrate(engine)
            catalog = load_catalog(default_catalog_path())
            services = Services.create(settings, catalog, engine, create_i18n(), utc_now)
            bot = create_bot(settings)
            sender: OutboxSender = create_dispatcher(services, bot)["outbox"]
            now = utc_now()
            async with services.sessions.begin() as session:
                for n in range(patients):
                    user_id = FIRST_ID + n
                    server.register_user({"id": user_id, "is_bot": False, "first_name": "P"})
                    session.add(
                        Patient(
                            telegram_id=user_id,
                            full_name="P",
                            birth_date=date(1980, 1, 1),
                            phone="+79990000000",
                            region_code=38,
                            time_zone="Asia/Irkutsk",
                            consent_version="bench",
                            consent_at=now,
                            registered_at=now,
                            updated_at=now,
                        )
                    )
            started = time.monotonic()
            await services.broadcasts.start(
                token="bench",  # noqa: S106 - the broadcast's draft token
                author_id=1,
                chat_id=FIRST_ID,
                message_id=None,
                content=Content(ContentKind.TEXT, "Benchmark broadcast"),
                audience=Audience(AudienceKind.ALL),
            )
            queued = time.monotonic() - started
            personal_written: float | None = None
            personal_wait: float | None = None
            while await pending(services):
                await sender.deliver_due()
                elapsed = time.monotonic() - started
                if personal_written is None and elapsed > patients / broadcast_rate / 2:
                    async with services.sessions.begin() as session:
                        Outbox.send_message(
                            session, chat_id=FIRST_ID, text="personal", now=utc_now()
                        )
                    personal_written = time.monotonic()
                if personal_written is not None and personal_wait is None and personal_sent(server):
                    personal_wait = time.monotonic() - personal_written
                await asyncio.sleep(tick)
            total = time.monotonic() - started
            print(f"patients: {patients}; queued in {queued:.2f}s")
            print(f"delivered in {total:.1f}s: {patients / total:.1f} msg/s")
            expected = patients / broadcast_rate
            print(f"expected at BROADCAST_PER_SECOND={broadcast_rate}: {expected:.1f}s")
            if personal_wait is not None:
                print(f"a personal notification written mid-broadcast waited {personal_wait:.2f}s")
            await bot.session.close()
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--global-rate", type=float, default=30.0)
    parser.add_argument("--broadcast-rate", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.2, help="seconds between sender ticks")
    args = parser.parse_args()
    asyncio.run(run(args.patients, args.global_rate, args.broadcast_rate, args.tick))


if __name__ == "__main__":
    main()
