"""The parent of the bot processes the tests start: ``python -m bot`` without its start-up cost.

A fresh interpreter spends seconds importing aiogram (its hundreds of pydantic models) before the
bot does anything; the process tests started some thirty of them. This server imports the bot's
modules once and then forks a child for each ``python -m <module> <args>`` asked of it (one JSON
line on stdin, answered with ``{"pid": …}``). The child changes to the asked directory, takes
the asked environment and sends its stderr to the asked file, then runs the module as
``python -m`` does (``runpy``, ``__name__ == "__main__"``; exit code, traceback and atexit
handlers as the interpreter's). It is a process of its own: its own pid, event loop, signals
(SIGKILL, SIGSTOP, SIGTERM), database connections and sockets; only the imports are shared, as
pages of memory. When a child ends the server reports ``{"exit": pid, "code": …}`` (the code as
``Popen`` gives it: negative for a signal). No threads and no event loop run here, so forking is
safe.

What a fork cannot show, a cold start, is shown by the tests that start ``python -m bot`` with
``subprocess`` (tests/test_config.py, tests/test_staff_chats.py, tests/test_operations.py) and by
tests/test_install.py (the installed ``oblako-bot``, in CI)."""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import pkgutil
import runpy
import selectors
import sys
from typing import Any

#: Packages whose modules are imported before the first fork (what the processes run).
PACKAGES = ("bot", "scheduler")
#: Not imported: Alembic's migration scripts run only inside a migration; the aiogram-max adapter
#: only with MAX_BOT_TOKEN set (it needs Python >= 3.12 and the `max` extra).
SKIP = ("bot.storage.migrations", "bot.messengers.max_adapter")


def preload() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            # ``__main__`` modules run as ``__main__`` in the child, not imported here
            if not module.name.startswith(SKIP) and not module.name.endswith(".__main__"):
                importlib.import_module(module.name)
    # What the processes import only when they run (drivers are loaded by URL).
    for name in ("aiosqlite", "asyncpg", "redis.asyncio", "alembic.command"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # What is imported stays out of the children's garbage collections: they neither walk it
    # (the bot's own gc.collect at start took seconds) nor copy its pages by touching them.
    gc.collect()
    gc.freeze()


def exit_code(status: int) -> int:
    """``Popen.returncode`` of a wait status: the exit code, or minus the signal."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def serve() -> dict[str, Any] | None:
    """Answer requests until stdin closes (returns None); in a forked child, return its request."""
    out = sys.stdout
    children: dict[int, int] = {}  # pidfd -> pid
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    pending = b""

    def say(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    say({"ready": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.fd == 0:
                chunk = os.read(0, 65536)
                if not chunk:
                    return None
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        for pidfd in children:
                            os.close(pidfd)
                        return dict(request)
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = pid
                    selector.register(pidfd, selectors.EVENT_READ)
                    say({"pid": pid})
            else:
                pidfd = int(key.fd)
                pid = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                say({"exit": pid, "code": exit_code(status)})


def become(request: dict[str, Any]) -> None:
    """In the child: be ``python -m <module> <args>`` started in ``cwd`` with ``env``."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    stdout = request.get("stdout")
    out = os.open(stdout, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if stdout else devnull
    os.dup2(out, 1)
    stderr = request.get("stderr")
    err = os.open(stderr, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if stderr else devnull
    os.dup2(err, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # as ``python -m`` puts it
    sys.argv = [sys.argv[0], *request["args"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as stop:  # as the interpreter reads it
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints it
        sys.excepthook(*sys.exc_info())
        code = 1
    # What an interpreter's exit does that anyone can see (atexit: logging's flush, among
    # others), without tearing down the whole heap it shares with the server (seconds).
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    preload()
    request = serve()
    if request is not None:
        become(request)


if __name__ == "__main__":
    main()
