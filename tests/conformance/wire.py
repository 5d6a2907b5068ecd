"""Client-side socket helpers and the timing assertion the data-path tests share."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum

RECV_SIZE = 65536

# The real server's own tests allow 10 ms either way. Ours run a Python client and Python upstreams
# next to the server on a busy 2-core machine, where scheduling only ever makes things late, so
# allow a little early and more late; both stay far below every delay under test (100 ms and up),
# so a toxic not applied (0) or applied twice (2x) still fails.
EARLY_MARGIN_S = 0.03
LATE_MARGIN_S = 0.06


# The ``connect`` fixture: open a client connection to ``host:port``, closed when the test ends.
Connect = Callable[[str], socket.socket]


class End(Enum):
    """How a read on a connection ended."""

    EOF = "eof"
    RESET = "reset"
    TIMEOUT = "timeout"


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@contextmanager
def _timeout_restored(sock: socket.socket) -> Iterator[None]:
    """The helpers below shorten the socket's timeout as their deadline nears; put it back so a
    later ``sendall`` does not inherit a timeout of a few microseconds."""
    previous = sock.gettimeout()
    try:
        yield
    finally:
        sock.settimeout(previous)


def recv_exactly(sock: socket.socket, count: int, timeout: float = 5.0) -> bytes:
    """Read exactly ``count`` bytes or fail saying how many arrived."""
    with _timeout_restored(sock):
        return _recv_exactly(sock, count, timeout)


def _recv_exactly(sock: socket.socket, count: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"read {len(buf)} of {count} bytes within {timeout}s")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(RECV_SIZE, count - len(buf)))
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {count} bytes")
        buf += chunk
    return bytes(buf)


def echo_round_trip(sock: socket.socket, message: bytes = b"ping") -> float:
    """Send ``message`` through an echo upstream and read it back; return the seconds it took."""
    start = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - start


def read_to_end(sock: socket.socket, timeout: float) -> tuple[bytes, End]:
    """Read until EOF, a reset or ``timeout``; return the data and how the read ended."""
    with _timeout_restored(sock):
        return _read_to_end(sock, timeout)


def _read_to_end(sock: socket.socket, timeout: float) -> tuple[bytes, End]:
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(buf), End.TIMEOUT
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(RECV_SIZE)
        except TimeoutError:
            return bytes(buf), End.TIMEOUT
        except ConnectionResetError:
            return bytes(buf), End.RESET
        if not chunk:
            return bytes(buf), End.EOF
        buf += chunk


def assert_nothing_arrives(sock: socket.socket, wait: float) -> None:
    """Within ``wait`` the connection neither delivers data nor closes."""
    data, end = read_to_end(sock, wait)
    assert (data, end) == (b"", End.TIMEOUT), f"expected silence, got {len(data)} bytes and {end}"


def assert_duration(
    what: str,
    actual: float,
    expected: float,
    *,
    jitter: float = 0.0,
    late: float = LATE_MARGIN_S,
) -> None:
    """``actual`` seconds is ``expected`` ± ``jitter``, give or take the timing margins."""
    low = max(0.0, expected - jitter - EARLY_MARGIN_S)
    high = expected + jitter + late
    assert low <= actual <= high, (
        f"{what}: took {actual * 1000:.1f} ms, expected {expected * 1000:.0f} ms "
        f"(between {low * 1000:.0f} and {high * 1000:.0f} ms)"
    )


def connection_refused(address: str) -> bool:
    """True when nothing accepts connections at ``address`` any more."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return False
    except ConnectionRefusedError:
        return True
