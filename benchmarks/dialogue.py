"""The update path under load: the real bot process against a bare aiogram echo bot, in one run.

Both poll the same lean fake Bot API (benchmarks.lean_telegram, in this process), one at a time,
interleaved and repeated. Users walk the registration (/start, consent, name, birth date, contact,
region, confirm) and then press five menu buttons. Workloads:

* closed loop at 1, 10 and 50 users (each sends its next update when the last one was answered);
* open loop: updates offered at a fixed rate (100/s) for a fixed time, whatever the bot's pace.

For each: updates/s, reply latency p50/p95/p99 (update queued → first visible reply) and CPU ms
per update of the bot's process; then the ratios bot / bare.

    python -m benchmarks.dialogue                       # the full run (about 8 minutes)
    python -m benchmarks.dialogue --quick               # a smoke run (about 1.5 minutes)

Scale-out: ``--scale-out`` runs the bot as webhook workers on PostgreSQL + Redis (``--database-url``
and ``--redis-url``; the lean fake posts updates to the workers in turn, as a round-robin proxy)
and compares two workers with one, instead of the bot with bare aiogram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from benchmarks.lean_telegram import BenchUser, LeanTelegram

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # noqa: S105 - the fake's token
TICK = os.sysconf("SC_CLK_TCK")
USER_IDS = itertools.count(5_000_000_001)  # never repeated: every walk registers anew

# (kind, payload, the button a click needs): the registration, then menu presses.
SCRIPT: list[tuple[str, str]] = [
    ("text", "/start"),
    ("click", "Согласен"),
    ("text", "Иванова Мария Петровна"),
    ("text", "07.09.1961"),
    ("contact", ""),
    ("text", "Иркутская"),
    ("click", "Всё верно"),
    ("text", "👤 Профиль"),
    ("text", "❓ Помощь"),
    ("text", "📄 Документы"),
    ("text", "🗓 Мои консультации"),
    ("text", "📋 Мои заявки"),
]


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of a process (and, with ``children``, of its ended children waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def servers_cpu() -> float:
    """CPU seconds of the PostgreSQL and Redis servers' processes, with their children that
    ended (a backend of a closed connection: its CPU is counted in the postmaster's)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() in {"postgres", "redis-server"}:
                total += cpu_seconds(int(proc.name), children=True)
        except OSError:  # gone meanwhile
            continue
    return total


class CpuShares:
    """Where a run's CPU went: the machine (both cores), this benchmark process (the load and
    the fake Bot API), and the database servers; shown beside the bot's own CPU."""

    def __init__(self) -> None:
        self.machine = machine_jiffies()
        self.load = time.process_time()
        self.servers = servers_cpu()

    def finish(self, result: Result) -> None:
        busy, total = machine_jiffies()
        result.machine_busy = (busy - self.machine[0]) / max(1, total - self.machine[1])
        result.load_cpu = time.process_time() - self.load
        result.servers_cpu = servers_cpu() - self.servers


@dataclass
class Result:
    kind: str
    workload: str
    updates: int
    seconds: float
    cpu: float
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    lost_steps: Counter[str] = field(default_factory=Counter)
    registered: int = 0
    backlog_peak: int = 0
    api_calls: int = 0  # Bot API requests other than getUpdates (replies, edits, answers)
    machine_busy: float = 0.0  # share of both cores busy during the run
    load_cpu: float = 0.0  # CPU seconds of the benchmark process (users, fake API, proxy)
    servers_cpu: float = 0.0  # CPU seconds of PostgreSQL and Redis

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    @property
    def calls_per_update(self) -> float:
        return self.api_calls / self.updates if self.updates else float("nan")

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.updates if self.updates else float("nan")

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Walker:
    """Plays users: ids never repeat, so every walk is a new registration."""

    def __init__(self, api: LeanTelegram, kind: str, within: float) -> None:
        self.api = api
        self.kind = kind
        self.within = within
        self.ids = USER_IDS
        self.clicks_missed = 0

    def new_user(self) -> BenchUser:
        return BenchUser(self.api, next(self.ids))

    def ready(self, user: BenchUser, step: int) -> bool:
        kind, payload = SCRIPT[step]
        if kind != "click" or self.kind == "bare":
            return True
        return any(payload in text for text in user.chat.buttons)

    async def step(self, user: BenchUser, step: int) -> float | None:
        """Send one step; the seconds until its first reply (None: no reply in time)."""
        if not self.ready(user, step):  # the keyboard may come a moment after the text
            deadline = time.monotonic() + self.within
            while not self.ready(user, step) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        kind, payload = SCRIPT[step]
        seen = user.chat.replies
        started = time.monotonic()
        if kind == "text":
            await user.send_text(payload)
        elif kind == "contact":
            await user.send_contact(f"+7914{user.id % 10_000_000:07d}")
        elif not await user.click(payload) and self.kind == "bot":
            self.clicks_missed += 1
        if await user.wait_reply(seen, self.within) is None:
            return None
        return time.monotonic() - started


class BotProcess:
    def __init__(
        self, kind: str, api: LeanTelegram, tmp: Path, env: dict[str, str], workers: int = 0
    ) -> None:
        self.kind = kind
        self.api = api
        self.tmp = tmp
        self.env = env
        self.workers = workers  # 0: one polling process; n: n webhook workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []
        self.profile: str | None = None
        self.against: Path | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": self.api.base_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp}/bench.db",
            "FILES_DIR": str(self.tmp / "files"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # the catalog's staff chats are placeholders, which the bot refuses
            "STAFF_CHAT_IDS": "bakulev=-1001000000101,kulakov=-1001000000102",
            **self.env,
        }
        module = "benchmarks.bare_echo" if self.kind == "bare" else "bot"
        # "base": the bot of another checkout (--against), on its own import path
        path = str(self.against) if self.kind == "base" and self.against else str(ROOT)
        polls = self.api.polls
        if self.workers:
            await self._start_workers(env)
            self._record()
            return
        command = [sys.executable, "-m", module]
        self.proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and module
            command,
            cwd=self.tmp,
            env={**env, "PYTHONPATH": path},
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{self.kind}.log", "wb"),  # noqa: SIM115, ASYNC230
        )
        deadline = time.monotonic() + 120
        while self.api.polls <= polls:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.tmp / f"{self.kind}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.kind} did not start:\n{log}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let start-up work (commands menu, scheduler) settle
        self._record()

    async def _start_workers(self, env: dict[str, str]) -> None:
        for number in range(self.workers):
            port = free_port()
            worker_env = {
                **env,
                "PYTHONPATH": str(ROOT),
                "WEBHOOK": "true",
                "WEBHOOK_URL": f"http://127.0.0.1:{port}/tg",
                "WEBHOOK_SECRET": "bench-secret",
                "WEBHOOK_PORT": str(port),
                # one scheduler among the workers holds the lease (as in production)
            }
            proc = subprocess.Popen(  # noqa: ASYNC220 - our own interpreter and module
                [sys.executable, "-m", "bot"],
                cwd=self.tmp,
                env=worker_env,
                stdout=subprocess.DEVNULL,
                stderr=open(self.tmp / f"worker{number}.log", "wb"),  # noqa: SIM115, ASYNC230
            )
            if self.proc is None:
                self.proc = proc
            else:
                self.extra.append(proc)
            # one at a time: the first migrates the empty database (README: start one first)
            deadline = time.monotonic() + 120
            while len(self.api.webhooks) <= number:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"workers did not start; see {self.tmp}/worker*.log")
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

    def _record(self) -> None:
        """py-spy samples the bot (its first process) until it stops."""
        if not self.profile or self.proc is None:
            return
        spy = ["py-spy", "record", "-r", "400", "--format", "raw", "--nonblocking"]
        subprocess.Popen(  # noqa: S603
            [*spy, "-o", self.profile, "--pid", str(self.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def cpu(self) -> float:
        assert self.proc is not None
        return sum(cpu_seconds(p.pid) for p in [self.proc, *self.extra])

    async def stop(self) -> None:
        for proc in [self.proc, *self.extra]:
            if proc is None:
                continue
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)


async def closed_loop(process: BotProcess, users: int, seconds: float, within: float) -> Result:
    walker = Walker(process.api, process.kind, within)
    result = Result(process.kind, f"closed {users} users", 0, seconds, 0.0)
    stop_at = time.monotonic() + seconds

    async def one_user() -> None:
        while time.monotonic() < stop_at:
            user = walker.new_user()
            for step in range(len(SCRIPT)):
                if time.monotonic() >= stop_at:
                    return
                latency = await walker.step(user, step)
                if latency is None:
                    result.unanswered += 1
                    result.lost_steps[SCRIPT[step][1]] += 1
                    break
                result.updates += 1
                result.latencies.append(latency)

    cpu, calls = process.cpu(), replies_asked(process.api)
    shares = CpuShares()
    started = time.monotonic()
    await asyncio.gather(*(one_user() for _ in range(users)))
    result.seconds = time.monotonic() - started
    result.cpu = process.cpu() - cpu
    shares.finish(result)
    result.api_calls = replies_asked(process.api) - calls
    result.registered = sum(
        any("Регистрация завершена" in t for t in chat.texts) for chat in process.api.chats.values()
    )
    return result


async def open_loop(process: BotProcess, rate: float, seconds: float, within: float) -> Result:
    """Offer ``rate`` updates/s for ``seconds``: a user whose last update was answered sends its
    next step; if nobody is ready a new user starts. Then wait for what is outstanding."""
    walker = Walker(process.api, process.kind, within)
    result = Result(process.kind, f"open {rate:.0f}/s", 0, seconds, 0.0)
    ready: deque[tuple[BenchUser, int]] = deque()
    outstanding: set[asyncio.Task[None]] = set()

    async def fire(user: BenchUser, step: int) -> None:
        latency = await walker.step(user, step)
        if latency is None:
            result.unanswered += 1
            result.lost_steps[SCRIPT[step][1]] += 1
            return
        result.updates += 1
        result.latencies.append(latency)
        if step + 1 < len(SCRIPT):
            ready.append((user, step + 1))

    cpu, calls = process.cpu(), replies_asked(process.api)
    shares = CpuShares()
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < started + seconds:
        due = int((now - started) * rate) + 1
        while sent < due:
            for _ in range(len(ready)):
                user, step = ready.popleft()
                if walker.ready(user, step):
                    break
                ready.append((user, step))
            else:
                user, step = walker.new_user(), 0
            task = asyncio.create_task(fire(user, step))
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
            sent += 1
        result.backlog_peak = max(result.backlog_peak, len(outstanding))
        await asyncio.sleep(0.002)
    if outstanding:
        await asyncio.wait(set(outstanding))
    result.seconds = time.monotonic() - started
    result.cpu = process.cpu() - cpu
    shares.finish(result)
    result.api_calls = replies_asked(process.api) - calls
    return result


def replies_asked(api: LeanTelegram) -> int:
    """Bot API requests so far, but for polling: each costs the bot a request and a response."""
    return sum(n for method, n in api.calls.items() if method != "getUpdates")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: list[Result], *, scale_out: bool = False, against: bool = False) -> None:
    workloads = list(dict.fromkeys(r.workload for r in results))
    print()
    print(
        f"{'workload':<18}{'bot':>6}{'upd/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/upd':>12}{'calls/upd':>11}{'lost':>6}{'regs':>6}"
    )
    summary: dict[tuple[str, str], tuple[float, float]] = {}
    for workload in workloads:
        for kind in dict.fromkeys(r.kind for r in results):
            runs = [r for r in results if r.workload == workload and r.kind == kind]
            if not runs:
                continue
            merged = [x for r in runs for x in r.latencies]
            rate = median([r.rate for r in runs])
            cpu = median([r.cpu_ms for r in runs])
            calls = median([r.calls_per_update for r in runs])
            pooled = Result(kind, workload, 1, 1, 0, merged)
            summary[(workload, kind)] = (rate, cpu)
            print(
                f"{workload:<18}{kind:>6}{rate:>9.1f}{pooled.pct(0.50):>9.1f}"
                f"{pooled.pct(0.95):>9.1f}{pooled.pct(0.99):>9.1f}{cpu:>12.2f}{calls:>11.2f}"
                f"{sum(r.unanswered for r in runs):>6}{sum(r.registered for r in runs):>6}"
            )
    print()
    base, other = ("1 worker", "2 workers") if scale_out else ("bare", "bot")
    if against:
        base = "base"
    print(f"{'workload':<18}{'throughput ' + other + '/' + base:>30}{'CPU ratio':>12}")
    for workload in workloads:
        if (workload, base) in summary and (workload, other) in summary:
            (bare_rate, bare_cpu), (bot_rate, bot_cpu) = (
                summary[(workload, base)],
                summary[(workload, other)],
            )
            print(f"{workload:<18}{bot_rate / bare_rate:>21.0%} {bot_cpu / bare_cpu:>14.1f}×")


async def reset_servers(args: argparse.Namespace) -> None:
    """A clean PostgreSQL schema and Redis for each scale-out run."""
    import asyncpg
    from redis.asyncio import Redis
    from sqlalchemy.engine import make_url

    url = make_url(args.database_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await connection.close()
    redis = Redis.from_url(args.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def run(args: argparse.Namespace) -> None:
    api = LeanTelegram()
    await api.start()
    results: list[Result] = []
    extra = dict(item.split("=", 1) for item in args.env)
    try:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp_name:
            tmp = Path(tmp_name)
            if args.keep:
                tmp = Path(tempfile.mkdtemp(dir=args.workdir))
                print(f"logs and databases in {tmp}")
            first, second = ("1 worker", "2 workers") if args.scale_out else ("bare", "bot")
            if args.against:
                first = "base"
            for round_no in range(args.rounds):
                kinds = [first, second] if round_no % 2 == 0 else [second, first]
                for kind in kinds:
                    workdir = tmp / f"{kind.replace(' ', '')}-{round_no}"
                    workdir.mkdir()
                    if args.scale_out:
                        await reset_servers(args)
                        env = extra | {"DATABASE_URL": args.database_url}
                        env |= {"REDIS_URL": args.redis_url, "LOG_LEVEL": "WARNING"}
                        process = BotProcess("bot", api, workdir, env, workers=int(kind[0]))
                        process.kind = kind
                    else:
                        process = BotProcess(kind, api, workdir, {} if kind == "bare" else extra)
                        process.against = args.against
                    if kind == second:  # the bot, or one worker of two
                        process.profile = args.profile
                    api.reset()
                    await process.start()
                    try:
                        jobs: list[Callable[[BotProcess], Awaitable[Result]]] = [
                            partial(closed_loop, users=n, seconds=args.seconds, within=args.timeout)
                            for n in args.users
                        ]
                        if round_no < args.open_rounds:
                            jobs.append(
                                partial(
                                    open_loop, rate=args.rate, seconds=args.open_seconds, within=30
                                )
                            )
                        for job in jobs:
                            result = await job(process)
                            results.append(result)
                            print(
                                f"round {round_no + 1} {kind:>4} {result.workload:<16} "
                                f"{result.rate:7.1f} upd/s  p99 {result.pct(0.99):7.1f} ms  "
                                f"CPU {result.cpu_ms:5.2f} ms/upd  lost {result.unanswered}  "
                                f"cores busy {result.machine_busy:4.0%}: bot "
                                f"{result.cpu / result.seconds:4.0%}, load+API "
                                f"{result.load_cpu / result.seconds:4.0%}"
                                + (
                                    f", PG+Redis {result.servers_cpu / result.seconds:4.0%}"
                                    if args.scale_out
                                    else ""
                                )
                                + (f" {dict(result.lost_steps)}" if result.lost_steps else ""),
                                flush=True,
                            )
                            await asyncio.sleep(0.5)
                    finally:
                        await process.stop()
    finally:
        await api.stop()
    report(results, scale_out=args.scale_out, against=args.against is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=10, help="each closed-loop run")
    parser.add_argument("--rate", type=float, default=100, help="open loop: updates/s offered")
    parser.add_argument("--open-seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--open-rounds", type=int, default=1, help="rounds with the open loop")
    parser.add_argument("--timeout", type=float, default=30, help="a reply later is lost")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the bot")
    parser.add_argument("--workdir", help="where the bots' databases and logs go (a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the logs (under --workdir)")
    parser.add_argument("--profile", help="record the bot with py-spy into this file (raw)")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of another version of the bot (git worktree): measured as 'base' in "
        "place of the bare bot, interleaved, to compare two versions in one run",
    )
    parser.add_argument("--scale-out", action="store_true", help="2 webhook workers vs 1")
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://oblako:oblako@127.0.0.1:55432/oblako_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:56379/5")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.open_seconds, args.rounds = 4, 10, 1
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
