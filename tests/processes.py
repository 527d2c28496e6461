"""Start ``python -m bot`` / ``python -m scheduler`` for the process tests, forked from
tests/forkserver.py (the imports done once per test session) instead of a fresh interpreter each.

``popen`` takes what ``subprocess.Popen`` takes in those tests and returns an object that behaves
like one for them (``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``, ``returncode``); ``run``
is ``subprocess.run`` with the output captured. With ``OBLAKO_TEST_FORK=0`` they are
``subprocess``'s own: every process a cold start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, Protocol

ROOT = Path(__file__).resolve().parent.parent


class Child(Protocol):
    """What the process tests use of ``subprocess.Popen``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


def forking(argv: list[str] | None = None, env: dict[str, str] | None = None) -> bool:
    """Fork ``[python, -m, module, ...]`` unless told not to (OBLAKO_TEST_FORK=0) or unless
    ``env`` sets an interpreter start-up option (PYTHONPROFILEIMPORTTIME, PYTHONWARNINGS, ...):
    a forked child has started already, so only a cold start honours those."""
    if os.environ.get("OBLAKO_TEST_FORK", "1") == "0" or not hasattr(os, "pidfd_open"):
        return False
    if argv is not None and (len(argv) < 3 or argv[0] != sys.executable or argv[1] != "-m"):
        return False
    for name, value in (env or {}).items():
        if name == "PYTHONPATH" and value != str(ROOT):
            return False  # the server imported the bot from ROOT
        if name.startswith("PYTHON") and name != "PYTHONPATH" and os.environ.get(name) != value:
            return False
    return True


class ForkServer:
    """The client of one tests/forkserver.py process."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._changed = threading.Condition()
        self._ready = False
        self._pids: list[int] = []  # answers to requests, in order
        self._codes: dict[int, int] = {}
        self._request_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "ready" in message:
                    self._ready = True
                elif "pid" in message:
                    self._pids.append(int(message["pid"]))
                elif "exit" in message:
                    self._codes[int(message["exit"])] = int(message["code"])
                self._changed.notify_all()
        with self._changed:  # the server is gone
            self._changed.notify_all()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def spawn(
        self,
        module: str,
        args: list[str],
        *,
        cwd: Path | str,
        env: dict[str, str],
        stderr: Any,
        stdout: Any = None,
    ) -> ForkedChild:
        request = {
            "module": module,
            "args": args,
            "cwd": str(cwd),
            "env": dict(env),
            "stderr": _path_of(stderr),
            "stdout": _path_of(stdout),
        }
        assert self._proc.stdin is not None
        with self._request_lock:
            with self._changed:
                # the first request waits for the imports (seconds on a loaded machine)
                if not self._changed.wait_for(lambda: self._ready or not self.alive(), 300):
                    raise RuntimeError("the fork server did not get ready")
                if not self._ready:
                    raise RuntimeError("the fork server died before it was ready")
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
            with self._changed:
                if not self._changed.wait_for(lambda: self._pids or not self.alive(), 60):
                    raise RuntimeError("the fork server did not answer")
                if not self._pids:
                    raise RuntimeError("the fork server died")
                pid = self._pids.pop(0)
        return ForkedChild(self, pid)

    def code_of(self, pid: int) -> int | None:
        with self._changed:
            return self._codes.get(pid)

    def wait_for_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._codes or not self.alive(), timeout)
            return self._codes.get(pid)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class ForkedChild:
    """A process forked by the server; signalled through a pidfd, so never a recycled pid."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone and reaped
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._done(self._server.code_of(self.pid))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._done(self._server.wait_for_exit(self.pid, timeout))
        if self.returncode is None:
            raise subprocess.TimeoutExpired([self.pid], timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            # it may have ended meanwhile: tolerated, as Popen.send_signal does
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _done(self, code: int | None) -> None:
        if code is not None:
            self.returncode = code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def __del__(self) -> None:
        if getattr(self, "_pidfd", None) is not None:
            os.close(self._pidfd)  # type: ignore[arg-type]


def _path_of(stream: Any) -> str | None:
    if stream is None:
        return None
    if isinstance(stream, str | Path):
        return str(stream)
    name = getattr(stream, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"stderr must be a file with a path, not {stream!r}")
    return name


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """The session's server, started on first use (or ahead, by ``warm_up``)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = ForkServer()
        return _server


def warm_up() -> None:
    """Start the server now, so its imports overlap with the tests that run before."""
    if forking():
        fork_server()


def shut_down() -> None:
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)``
    for ``[python, -m, module, *args]``, forked like ``popen`` (its output through files in
    ``cwd``)."""
    if not forking(argv, env):
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    out, err = Path(cwd) / ".forked.stdout", Path(cwd) / ".forked.stderr"
    out.write_bytes(b"")
    err.write_bytes(b"")
    child = fork_server().spawn(argv[2], argv[3:], cwd=cwd, env=env, stderr=err, stdout=out)
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    return subprocess.CompletedProcess(
        argv, code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")
    )


def popen(
    argv: list[str], *, cwd: Path | str, env: dict[str, str], stderr: IO[bytes] | None = None
) -> Child:
    """``subprocess.Popen(argv, cwd=cwd, env=env, stderr=stderr)`` for ``[python, -m, module,
    *args]``: forked from the fork server (see the module's docstring)."""
    if not forking(argv, env):
        return subprocess.Popen(argv, cwd=cwd, env=env, stderr=stderr)
    return fork_server().spawn(argv[2], argv[3:], cwd=cwd, env=env, stderr=stderr)
