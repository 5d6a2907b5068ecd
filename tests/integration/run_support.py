"""Running `harness run` for real from a test, against a tiny HTTP server of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.record import RunDir
from harness.stack.ports import free_ports

RUN_TIMEOUT_S = 90.0

# --- a target of the test's own -----------------------------------------------------------------

Respond = Callable[[str, int], tuple[int, dict[str, str]]]


def ok(path: str, n: int) -> tuple[int, dict[str, str]]:
    return 200, {}


class Target:
    """A tiny keep-alive HTTP/1.1 server on 127.0.0.1, in a thread of the test process.

    ``respond(path, n)`` (n counts requests from 1) picks the status and extra headers.
    :meth:`outage` closes the listening socket and every open connection, so each attempt in
    the outage is refused (no response: status 0), then listens again on the same port.
    """

    def __init__(self, respond: Respond = ok) -> None:
        self.respond = respond
        self.port = free_ports(1)[0]
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._listen())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def _down(self) -> float:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        return time.time()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                status, headers = self.respond(path, self.requests)
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def outage(self, seconds: float) -> tuple[float, float]:
        """Refuse connections for ``seconds``; the unix times it went down and came back."""
        down = self._call(self._down())
        time.sleep(max(0.0, down + seconds - time.time()))
        self._call(self._listen())
        return down, time.time()

    def close(self) -> None:
        self._call(self._down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


# --- running `harness run` ------------------------------------------------------------------


def write_scenario(
    tmp_path: Path, *, body: str, users_py: str, name: str = "it", entry_url: str | None = None
) -> Path:
    (tmp_path / "users.py").write_text(textwrap.dedent(users_py))
    stack = f'stack: {{kind: external, entry_url: "{entry_url}"}}\n' if entry_url else ""
    path = tmp_path / "scenario.yaml"
    path.write_text(f"name: {name}\n{stack}" + textwrap.dedent(body))
    return path


def harness_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "LOCUST_"))}
    return {**clean, **(extra or {})}


# Every `harness run` started here in the current test, for stop_leftover_runs.
_STARTED: list[subprocess.Popen[str]] = []


def start_run(
    scenario: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return _start(scenario, args, env or harness_env(), new_session=False)


def start_in_own_session(scenario: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`harness run` as a terminal runs it: in a process group of its own, so a "Ctrl-C" can go
    to the whole foreground group, as a terminal sends it."""
    return _start(scenario, args, env, new_session=True)


def _start(
    scenario: Path, args: tuple[str, ...], env: dict[str, str], *, new_session: bool
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), *args],
        cwd=scenario.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    _STARTED.append(process)
    return process


def stop_leftover_runs() -> None:
    """Kill every `harness run` a test started and left running (a test that failed half-way),
    with everything it started, and close their pipes: otherwise the run goes on loading the
    machine, and its pipes' ResourceWarnings are raised in whichever test runs when the
    garbage collector finds them."""
    for process in _STARTED:
        if process.poll() is None:
            _kill_with_everything_it_started(process.pid)
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    _STARTED.clear()


def _kill_with_everything_it_started(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        if os.getsid(pid) == pid:  # its own session: the group holds its workers, orphans too
            os.killpg(pid, signal.SIGKILL)
            return
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        os.kill(pid, signal.SIGKILL)


def finish(process: subprocess.Popen[str], timeout_s: float = RUN_TIMEOUT_S) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"harness run did not end within {timeout_s:.0f}s:\n{out}\n{err}")


def run_harness(
    scenario: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    process = start_run(scenario, *args, env=env)
    out, err = finish(process)
    return process.returncode, out, err


def run_dirs(reports: Path) -> list[Path]:
    """The run directories under ``reports`` (the history index beside them is not one)."""
    return sorted(p for p in reports.iterdir() if p.is_dir())


def the_run(reports: Path) -> RunDir:
    (root,) = run_dirs(reports)
    return RunDir.open(root)


def the_run_once_made(reports: Path) -> RunDir | None:
    """The one run under ``reports`` once its store is in place, None before: a run that is
    starting has no directory or no store yet (the store appears whole, by a rename)."""
    roots = run_dirs(reports) if reports.is_dir() else []
    if not roots:
        return None
    (root,) = roots
    if not RunDir(root).database.is_file():
        return None
    return RunDir.open(root)
