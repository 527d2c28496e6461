"""Run the fake Bot API standalone: ``python -m fakegram --port 8081 --token T``.

Point a bot at it with ``TelegramAPIServer.from_base("http://127.0.0.1:8081")``.
Stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .server import FakeTelegram


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fakegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--token", action="append", required=True, help="bot token (repeat for more bots)"
    )
    parser.add_argument("--username", default="oblako_test_bot")
    parser.add_argument("--first-name", default="Облако здоровья")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = FakeTelegram(host=args.host, port=args.port)
    for token in args.token:
        server.add_bot(token, username=args.username, first_name=args.first_name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"fakegram: Bot API on {server.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
