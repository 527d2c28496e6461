"""Referral import: time and peak memory of 1,000 and 10,000 generated rows (.xlsx and .csv),
imported through ReferralService into a fresh SQLite database with the report written.

    python benchmarks/referral_import.py [--rows 10000] [--baseline 1000]

Time is measured without tracemalloc (it slows Python down several times), peak memory in a
second run with it. Exits non-zero when the big file takes a minute or more, or when its peak
memory is 5x the baseline's or more (the rows are 10x: memory must not follow them)."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openpyxl import Workbook

from bot.catalog import default_catalog_path, load_catalog
from bot.i18n import create_i18n, variants
from bot.referral_sheets import HEADER_KEYS, ReportWriter
from bot.services.clock import utc_now
from bot.services.referrals import COLUMNS, ReferralService
from bot.storage.db import create_engine, create_session_factory, migrate

REGIONS = ("Иркутская обл.", "г. Москва", "Республика Татарстан", "Свердловская область")
CENTERS = (
    ("Центр Бакулева", "Ишемическая болезнь сердца"),
    ("НМИЦ АГП", "Патология молочной железы"),
)


def rows(count: int) -> list[list[str]]:
    out = []
    for i in range(count):
        center, group = CENTERS[i % 2]
        out.append(
            [
                f"Иванова Мария Петровна{'' if i % 7 else ' '}",
                f"{1 + i % 28:02d}.{1 + i % 12:02d}.{1950 + i % 60}",
                f"+7 914 {i // 10000 % 1000:03d}-{i // 100 % 100:02d}-{i % 100:02d}",
                REGIONS[i % len(REGIONS)],
                center,
                group,
                "Диагноз по МКБ-10 и краткое описание",
                "ОГБУЗ «Областная клиническая больница»",
                "Кузнецова Ирина Львовна",
                "Комментарий лечащего врача" if i % 3 else "",
            ]
        )
    return out


def as_xlsx(headers: list[str], data: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(headers)
    for values in data:
        sheet.append(values)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def as_csv(headers: list[str], data: list[list[str]]) -> bytes:
    lines = [";".join(headers)] + [";".join(values) for values in data]
    return ("\n".join(lines) + "\n").encode("cp1251")


@dataclass
class Result:
    label: str
    rows: int
    seconds: float
    peak_mb: float


async def import_once(data: bytes, measure_memory: bool) -> tuple[float, float, int]:
    i18n = create_i18n("ru")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await migrate(engine)
        service = ReferralService(
            create_session_factory(engine),
            load_catalog(default_catalog_path()),
            utc_now,
            link_days=30,
            header_names={c: variants(i18n, f"referral.col.{c.value}") for c in COLUMNS},
        )
        with i18n.context(), i18n.use_locale("ru"):
            if measure_memory:
                tracemalloc.start()
            started = time.perf_counter()
            writer = ReportWriter("oblako_bot")
            summary = await service.import_table(data, 1, writer)
            report = writer.finish()
            seconds = time.perf_counter() - started
            peak = 0
            if measure_memory:
                _current, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        await engine.dispose()
    assert summary.rejected == 0, summary
    assert report
    return seconds, peak / 1024 / 1024, summary.created + summary.duplicates


async def measure(label: str, data: bytes) -> Result:
    seconds, _peak, count = await import_once(data, measure_memory=False)
    _seconds, peak, _count = await import_once(data, measure_memory=True)
    return Result(label, count, seconds, peak)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    args = parser.parse_args()
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        headers = [i18n.gettext(HEADER_KEYS[c]) for c in COLUMNS]
    results = []
    for kind, build in (("xlsx", as_xlsx), ("csv", as_csv)):
        for count in (args.baseline, args.rows):
            data = build(headers, rows(count))
            results.append(await measure(f"{kind} {count} rows ({len(data) // 1024} KB)", data))
    print(f"{'file':<28} {'rows':>7} {'seconds':>8} {'rows/s':>8} {'peak MB':>8}")
    for r in results:
        rate = r.rows / r.seconds if r.seconds else 0
        print(f"{r.label:<28} {r.rows:>7} {r.seconds:>8.2f} {rate:>8.0f} {r.peak_mb:>8.1f}")
    failed = False
    for small, big in ((results[0], results[1]), (results[2], results[3])):
        ratio = big.peak_mb / small.peak_mb if small.peak_mb else 0
        ok = big.seconds < 60 and ratio < 5
        failed |= not ok
        print(
            f"{big.label}: {big.seconds:.1f} s (limit 60), peak memory {ratio:.1f}x the "
            f"{small.rows}-row file's for {big.rows / small.rows:.0f}x the rows — "
            + ("ok" if ok else "FAILED")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
