"""Upstream TCP servers for the data-path tests, each on an ephemeral port of 127.0.0.1.

Every server runs an accept thread plus one thread per connection and records what each connection
received and when (``time.monotonic()``), so tests can time a toxic from the upstream's side.
``stop()`` shuts every connection down, joins every thread and closes every socket, so a test
leaves nothing behind for ``filterwarnings = error`` to trip on.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from contextlib import ExitStack
from types import TracebackType
from typing import Self, TypeVar

LOOPBACK = "127.0.0.1"
RECV_SIZE = 65536
_ACCEPT_POLL_S = 0.05
_JOIN_TIMEOUT_S = 5.0


class Peer:
    """One connection an upstream accepted, and everything that arrived on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._cond = threading.Condition()
        self._data = bytearray()
        self._arrivals: list[tuple[float, int]] = []  # (when, total bytes so far) per recv
        self._ended_at: float | None = None
        self.end_error: OSError | None = None

    def record(self, chunk: bytes) -> None:
        with self._cond:
            self._data += chunk
            self._arrivals.append((time.monotonic(), len(self._data)))
            self._cond.notify_all()

    def record_end(self, error: OSError | None = None) -> None:
        with self._cond:
            if self._ended_at is None:
                self._ended_at = time.monotonic()
                self.end_error = error
            self._cond.notify_all()

    @property
    def data(self) -> bytes:
        with self._cond:
            return bytes(self._data)

    @property
    def recv_count(self) -> int:
        """How many ``recv`` calls returned data: the number of pieces as the upstream saw them."""
        with self._cond:
            return len(self._arrivals)

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended_at is not None

    def wait_for_bytes(self, count: int, timeout: float) -> float:
        """Block until ``count`` bytes arrived; return when the ``count``-th byte arrived."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._data) >= count, timeout):
                raise AssertionError(
                    f"upstream received {len(self._data)} of {count} bytes within {timeout}s"
                )
            return next(when for when, total in self._arrivals if total >= count)

    def wait_for_end(self, timeout: float) -> float | None:
        """Block until the peer closed (EOF or error); return when, or ``None`` on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._ended_at is not None, timeout)
            return self._ended_at

    def read_until_end(self) -> None:
        """Record everything the connection receives until EOF or an error."""
        try:
            while chunk := self.sock.recv(RECV_SIZE):
                self.record(chunk)
        except OSError as exc:
            self.record_end(exc)
        else:
            self.record_end()


class TcpUpstream:
    """Base: accept connections on ``127.0.0.1:0`` and run :meth:`handle` on each in a thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(_ACCEPT_POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._peers: queue.Queue[Peer] = queue.Queue()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{type(self).__name__}-accept", daemon=True
        )

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, shut every connection down, join all threads, close all sockets."""
        self._stopping.set()
        if self._accept_thread.is_alive():
            self._accept_thread.join(_JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # the peer may already have gone
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def next_peer(self, timeout: float = 5.0) -> Peer:
        """The next connection accepted (in order), waiting up to ``timeout`` for it."""
        try:
            return self._peers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no connection reached the upstream within {timeout}s") from None

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far and not yet taken by :meth:`next_peer`."""
        return self._peers.qsize()

    def handle(self, peer: Peer) -> None:
        raise NotImplementedError

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            peer = Peer(sock)
            thread = threading.Thread(target=self._serve, args=(peer,), daemon=True)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._open.add(sock)
                self._threads.append(thread)
            self._peers.put(peer)
            thread.start()

    def _serve(self, peer: Peer) -> None:
        try:
            self.handle(peer)
        except OSError as exc:
            peer.record_end(exc)
        finally:
            # Deregister under the lock before closing, so stop() never shuts down a closed socket.
            with self._lock:
                self._open.discard(peer.sock)
            peer.sock.close()


class EchoServer(TcpUpstream):
    """Sends every chunk straight back as it arrives; closes after the client's EOF."""

    def handle(self, peer: Peer) -> None:
        while chunk := peer.sock.recv(RECV_SIZE):
            peer.record(chunk)
            peer.sock.sendall(chunk)
        peer.record_end()


class SinkServer(TcpUpstream):
    """Reads and records everything, never writes; closes after the client's EOF."""

    def handle(self, peer: Peer) -> None:
        peer.read_until_end()


class SenderServer(TcpUpstream):
    """Sends ``payload`` to every client, then closes the connection.

    By default it sends as soon as a client connects, like a server-first protocol. With
    ``trigger`` it first waits until those bytes arrive, which proves that the proxy has wired the
    connection in both directions before anything is sent.
    """

    def __init__(self, payload: bytes, *, trigger: bytes | None = None) -> None:
        super().__init__()
        self.payload = payload
        self.trigger = trigger

    def handle(self, peer: Peer) -> None:
        if self.trigger is not None:
            while len(peer.data) < len(self.trigger):
                chunk = peer.sock.recv(RECV_SIZE)
                if not chunk:
                    peer.record_end()
                    return
                peer.record(chunk)
        peer.sock.sendall(self.payload)
        peer.record_end()


class ManualServer(TcpUpstream):
    """Hands each accepted connection to the test (``next_peer().sock``) and keeps it open until
    ``stop()``; the test reads and writes it itself, like the Go tests' ``serverConn``."""

    def handle(self, peer: Peer) -> None:
        self._stopping.wait()


_Server = TypeVar("_Server", bound=TcpUpstream)


class Upstreams:
    """Starts upstream servers for one test (the ``upstreams`` fixture) and stops them all when
    the test ends."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack

    def _start(self, server: _Server) -> _Server:
        self._stack.enter_context(server)
        return server

    def echo(self) -> EchoServer:
        return self._start(EchoServer())

    def sink(self) -> SinkServer:
        return self._start(SinkServer())

    def sender(self, payload: bytes, *, trigger: bytes | None = None) -> SenderServer:
        return self._start(SenderServer(payload, trigger=trigger))

    def manual(self) -> ManualServer:
        return self._start(ManualServer())


def refused_address() -> str:
    """An address on 127.0.0.1 where nothing listens (a port that was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    return f"{LOOPBACK}:{port}"
