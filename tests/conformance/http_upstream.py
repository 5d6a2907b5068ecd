"""A small HTTP/1.1 upstream for the http toxic's tests, and a raw client that can pipeline.

The server is the standard library's ``http.server`` on 127.0.0.1 port 0, keep-alive, one thread
per connection. It reads request bodies (Content-Length and chunked), records every request it got
(method, path, headers, body, when, which connection) and answers ``200`` with
``upstream <METHOD> <path>``. A path starting with ``/slow`` answers after ``SLOW_S``. ``stop()``
shuts every connection down and joins every thread, so a test leaves nothing behind.

The client side writes raw request bytes (so tests control pipelining and chunking) and reads
responses one after the other from one buffered file with ``http.client.HTTPResponse``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, BinaryIO, Self

SLOW_S = 0.2
HANDLER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Seen:
    """One request as the upstream got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() once the whole request was in
    peer: tuple[str, int]  # the proxy's side of the upstream connection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT_S
    server: HttpUpstream

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.closed(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self) -> None:
        body = self._body()
        self.server.record(
            Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.monotonic(),
                self.client_address[:2],
            )
        )
        if self.path.startswith("/slow"):
            time.sleep(SLOW_S)
        payload = f"upstream {self.command} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer


class HttpUpstream(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the connection threads
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._seen: list[Seen] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self._thread.join(5)
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


# -- the client side ------------------------------------------------------------------------------


def request(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """Raw bytes of one HTTP/1.1 request with a Content-Length (unless told otherwise)."""
    fields = {"Host": "upstream.test", **(headers or {})}
    if body and "Transfer-Encoding" not in fields:
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode() + b"\r\n" + body


def chunked(*pieces: bytes) -> bytes:
    """A chunked body made of ``pieces``, with its last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _Kept:
    """The shared buffered file, except that ``close`` (which ``HTTPResponse`` calls once a body
    has been read) leaves it open for the next response."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fp, name)

    def close(self) -> None:
        return None


class _Source:
    """What ``HTTPResponse`` asks of a socket: only ``makefile``, here the shared buffered file,
    so that several responses can be read one after the other without losing bytes."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp

    def makefile(self, *args: object, **kwargs: object) -> _Kept:
        return _Kept(self.fp)


class Client:
    """One client connection to a proxy; requests go out raw, responses are read in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fp = sock.makefile("rb")

    def close(self) -> None:
        self.fp.close()

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def read(self, method: str = "GET", timeout: float = 5.0) -> Answer:
        self.sock.settimeout(timeout)
        response = http.client.HTTPResponse(_Source(self.fp), method=method)  # type: ignore[arg-type]
        response.begin()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body)

    def exchange(self, raw: bytes, method: str = "GET") -> Answer:
        self.send(raw)
        return self.read(method)
