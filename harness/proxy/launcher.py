"""Give the rest of the harness a running Toxiproxy: the real server when one is found, else ours.

Either way the server runs as a child process (so a fault in it cannot take the harness down, and a
kill is a real kill), the launcher waits until its API answers, and stops it on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import BadInputError, InfrastructureError

Kind = Literal["auto", "real", "embedded"]
Metrics = Literal["proxy", "runtime"]

# Where a real server may be: the name the release binaries and packages use, then the name
# `go install github.com/Shopify/toxiproxy/v2/cmd/server` gives it.
REAL_BINARY_NAMES = ("toxiproxy-server",)
STARTUP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RunningToxiproxy:
    """A Toxiproxy server this process started."""

    kind: Literal["real", "embedded"]
    host: str
    port: int
    pid: int
    binary: str

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _go_bin_dir() -> Path:
    gobin = os.environ.get("GOBIN")
    if gobin:
        return Path(gobin)
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    return Path(gopath.split(os.pathsep)[0]) / "bin"


def _is_real_toxiproxy(binary: Path) -> bool:
    """`server` is a generic name, so ask the binary what it is before trusting it."""
    try:
        out = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "toxiproxy" in (out.stdout + out.stderr).lower()


def find_real_toxiproxy(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Locate a real Toxiproxy server binary.

    Order: ``explicit``, ``$HARNESS_TOXIPROXY_BIN``, ``toxiproxy-server`` on PATH, then the
    Go-installed ``$GOBIN/server`` (or ``~/go/bin/server``). A named binary that is missing or is
    not Toxiproxy is bad input; an unnamed one that is absent is simply not found.
    """
    named = explicit or os.environ.get("HARNESS_TOXIPROXY_BIN")
    if named:
        path = Path(shutil.which(str(named)) or named)
        if not path.is_file() or not _is_real_toxiproxy(path):
            raise BadInputError(f"toxiproxy binary {str(named)!r}: not found or not Toxiproxy")
        return path
    for name in REAL_BINARY_NAMES:
        found = shutil.which(name)
        if found and _is_real_toxiproxy(Path(found)):
            return Path(found)
    go_server = _go_bin_dir() / "server"
    if go_server.is_file() and _is_real_toxiproxy(go_server):
        return go_server
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_api(api_url: str, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    """Poll ``/version`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise InfrastructureError(
                f"toxiproxy at {api_url} exited with code {process.returncode} during start"
            )
        try:
            with urllib.request.urlopen(f"{api_url}/version", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.05)
    raise InfrastructureError(
        f"toxiproxy at {api_url} did not answer in {timeout_s:.0f}s: {last_error}"
    )


def _command(
    kind: Literal["real", "embedded"],
    binary: Path | None,
    host: str,
    port: int,
    config_file: Path | None,
    metrics: tuple[str, ...] = (),
) -> list[str]:
    if kind == "real":
        assert binary is not None
        cmd = [str(binary), "-host", host, "-port", str(port)]
        if config_file is not None:
            cmd += ["-config", str(config_file)]
        return cmd + [f"-{name}-metrics" for name in metrics]
    cmd = [sys.executable, "-m", "harness", "proxy", "serve", "--host", host, "--port", str(port)]
    if config_file is not None:
        cmd += ["--config", str(config_file)]
    return cmd + [f"--{name}-metrics" for name in metrics]


def start_toxiproxy(
    *,
    kind: Kind = "auto",
    host: str = "127.0.0.1",
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    config_file: Path | None = None,
    log_file: Path | None = None,
    metrics: Iterable[Metrics] = (),
) -> tuple[RunningToxiproxy, subprocess.Popen[bytes]]:
    """Start a server and return once its API answers. The caller owns the process.
    ``metrics`` names the ``GET /metrics`` sets to turn on: ``proxy``, ``runtime`` (the real
    server's ``-proxy-metrics``, ``-runtime-metrics``)."""
    real_binary: Path | None = None
    if kind in ("auto", "real"):
        real_binary = find_real_toxiproxy(binary)
        if kind == "real" and real_binary is None:
            raise InfrastructureError(
                "no real Toxiproxy server found: install it with `go install "
                "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` or set HARNESS_TOXIPROXY_BIN"
            )
    chosen: Literal["real", "embedded"] = "real" if real_binary is not None else "embedded"
    if port is None:
        port = free_port(host)
    elif not port_is_free(host, port):
        raise InfrastructureError(f"toxiproxy API port {host}:{port} is already in use")

    cmd = _command(chosen, real_binary, host, port, config_file, tuple(metrics))
    log = open(log_file, "ab") if log_file is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError as exc:
        raise InfrastructureError(f"could not start toxiproxy ({cmd[0]}): {exc}") from exc
    finally:
        if log_file is not None and not isinstance(log, int):
            log.close()
    running = RunningToxiproxy(kind=chosen, host=host, port=port, pid=process.pid, binary=cmd[0])
    try:
        wait_for_api(running.api_url, STARTUP_TIMEOUT_S, process)
    except BaseException:
        stop_process(process)
        raise
    return running, process


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``. Safe to call on a process that already ended."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)
    except ProcessLookupError:
        pass


@contextmanager
def running_toxiproxy(
    *,
    kind: Kind = "auto",
    host: str = "127.0.0.1",
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    config_file: Path | None = None,
    log_file: Path | None = None,
    metrics: Iterable[Metrics] = (),
) -> Iterator[RunningToxiproxy]:
    """A Toxiproxy server for the duration of the ``with`` block, stopped on every way out."""
    running, process = start_toxiproxy(
        kind=kind,
        host=host,
        port=port,
        binary=binary,
        config_file=config_file,
        log_file=log_file,
        metrics=metrics,
    )
    try:
        yield running
    finally:
        stop_process(process)
