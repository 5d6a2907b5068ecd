"""The blast radius: which hosts the harness may send load or faults to.

By default only loopback (``127.0.0.0/8``, ``::1``, ``localhost``) and the stack the harness
started itself. Any other host must be allowed by name, in the scenario (``allow_targets``), on
the command line (``--allow-target HOST``, repeatable) or in ``$HARNESS_ALLOW_TARGETS`` (hosts
separated by commas or spaces). A typo in a URL, a copied scenario, a locustfile with an absolute
URL or a crafted fault journal must not point a load test or a fault at someone else's server.

Where it is enforced:

* the scenario's own URLs (``stack.entry_url``, ``stack.toxiproxy_url``, a post-run check's
  literal ``dsn``) when it is loaded (:mod:`harness.scenario`), and the entry URL again before
  the load starts (:mod:`harness.run.pipeline`);
* the Locust processes (:func:`guard_sockets`): every outgoing TCP connection of a master or a
  worker, whatever library a locustfile uses, goes to loopback, an allowed host or the stack the
  run started (``StackInfo.hosts()``), or fails with ``PermissionError`` before a byte is sent
  (Locust records it as a failed request);
* every URL the harness will call, wherever it comes from (:func:`url_problem`): the scenario,
  an ``http`` fault, a journal record, the game day's control file. A URL is read the way the
  HTTP clients read it (``requests``/``urllib3``, which Locust's ``HttpUser`` and the Toxiproxy
  client use, and ``urllib``), and refused when two readings could disagree on the host: user
  info (``user@``), a backslash, whitespace or a control character (``http://evil.example\\@
  127.0.0.1/`` is 127.0.0.1 to ``urlsplit`` and evil.example to ``urllib3``);
* ``harness rollback`` and the rollback a run does first (:func:`harness.faults.targets.
  check_record`): a journal record
  whose URLs name a host not allowed (nor an address of the compose project it names) is refused,
  reported and never reverted, so a crafted journal cannot send requests, nor the shop's admin
  token, elsewhere.

:func:`check_dsn` is for a ``dsn`` known only once its ``${VAR}`` is expanded.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import math
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from harness.errors import BadInputError, clip
from harness.fields import MAX_NESTING

__all__ = [
    "ALLOW_TARGETS_ENV",
    "MAX_URL_CHARS",
    "TargetPolicy",
    "TargetRefused",
    "check_dsn",
    "dsn_hosts",
    "guard_sockets",
    "hosts_from_env",
    "is_loopback",
    "json_depth_problem",
    "loads_json",
    "run_policy",
    "split_url",
    "url_problem",
]

ALLOW_TARGETS_ENV: Final = "HARNESS_ALLOW_TARGETS"
MAX_URL_CHARS: Final = 2048
_SEPARATORS: Final = re.compile(r"[\s,]+")
_HOST: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class TargetRefused(BadInputError):
    """A host the policy does not allow (exit 2: the input named it)."""


def is_loopback(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761), or an address on the loopback network."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_host(value: str, where: str = "allow target") -> str:
    """A host name or IP address as the policy compares it; ``BadInputError`` for anything else
    (a URL, a port, shell punctuation), with the value named."""
    host = value.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or len(host) > 253 or not _HOST.fullmatch(host):
        raise BadInputError(
            f"{where}: expected a host name like staging.example.com or an IP address, "
            f"got {value!r}"
        )
    return host


def hosts_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The hosts ``$HARNESS_ALLOW_TARGETS`` allows (commas or spaces between them)."""
    text = (os.environ if environ is None else environ).get(ALLOW_TARGETS_ENV, "")
    return tuple(
        normalize_host(item, ALLOW_TARGETS_ENV) for item in _SEPARATORS.split(text) if item
    )


def url_problem(url: object, schemes: tuple[str, ...] | None = ("http", "https")) -> str | None:
    """Why ``url`` is not a URL the harness may call (a short phrase without the value), or
    None when it is one. ``schemes=None``: any scheme (the host is what matters).

    The host is checked as ``urllib3.util.parse_url`` reads it (the parser behind ``requests``,
    so behind Locust's ``HttpUser`` and the Toxiproxy client) and as ``urllib.parse.urlsplit``
    reads it (``urllib.request`` and the rest of the harness), and must be the same for both.
    What makes readings differ is refused outright: user info, backslashes, whitespace and
    control characters, a host that is neither an IP address nor an ASCII host name.
    """
    if not isinstance(url, str) or not url:
        return "expected a URL"
    if len(url) > MAX_URL_CHARS:
        return f"a URL longer than {MAX_URL_CHARS} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "whitespace or a control character in a URL"
    if "\\" in url:
        return "a backslash in a URL (clients disagree on where it ends the host)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
        theirs = parse_url(url)
    except (ValueError, LocationParseError):
        return "not a URL with a valid host and port"
    if schemes is not None and parts.scheme not in schemes:
        return f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
    if "@" in parts.netloc:
        return "user info (user@ or user:password@) in a URL is not allowed"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "a URL without a host"
    try:
        normalize_host(host)
    except BadInputError:
        return "a host that is neither an IP address nor a host name of letters, digits, '-'"
    if (theirs.host or "").strip("[]").lower().rstrip(".") != host:
        return "a URL whose host HTTP clients read differently"
    return None


def split_url(url: str, what: str) -> SplitResult:
    """``url`` split, after :func:`url_problem` found nothing; else a one-line
    ``BadInputError`` naming ``what`` and the value (cut short)."""
    problem = url_problem(url)
    if problem:
        raise BadInputError(f"{what}: {problem}: {clip(repr(url))}")
    return urlsplit(url)


def host_of(url: str) -> str:
    """The host of a URL, lower case, without brackets; ``""`` when it has none, or when
    clients could read another host in it (:func:`url_problem`)."""
    if url_problem(url.strip(), schemes=None):
        return ""
    return (urlsplit(url.strip()).hostname or "").rstrip(".")


@dataclass(frozen=True)
class TargetPolicy:
    """Loopback, plus the hosts named in ``allowed`` (names or IP addresses)."""

    allowed: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, *groups: Iterable[str]) -> TargetPolicy:
        hosts: set[str] = set()
        for group in groups:
            hosts.update(normalize_host(h) for h in group if h)
        return cls(frozenset(hosts))

    def permits(self, host: str) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        if is_loopback(host):
            return True
        with contextlib.suppress(ValueError):
            host = str(ipaddress.ip_address(host))  # one spelling per address (::0001 is ::1)
        return host in self.allowed

    def check_url(self, url: str, what: str) -> None:
        """``TargetRefused`` naming ``what`` and the host, unless the URL's host is allowed. A
        URL without a host is refused too: where it would go is not known, and so is one that
        HTTP clients could read another host in (:func:`url_problem`)."""
        problem = url_problem(url.strip(), schemes=None)
        if problem:
            raise TargetRefused(f"{what}: {problem}: {clip(repr(url))}")
        host = host_of(url)
        if not self.permits(host):
            raise TargetRefused(
                f'{what}: host "{host}" is not loopback nor an allowed target; allow it with '
                f"allow_targets in the scenario, --allow-target {host} or {ALLOW_TARGETS_ENV}"
            )

    def addresses(self) -> frozenset[str]:
        """The IP addresses the allowed host names resolve to now (names that do not resolve
        are left out: nothing could connect to them either)."""
        found: set[str] = set()
        for host in self.allowed:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                continue
            found.update(str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)
        return frozenset(found)


def run_policy(allow_targets: Iterable[str], *stack_urls: str) -> TargetPolicy:
    """The policy of one run: loopback, the scenario's ``allow_targets`` (which ``harness run``
    has merged ``--allow-target`` into), ``$HARNESS_ALLOW_TARGETS``, the hosts of the stack the
    harness started (``stack_urls``: its entry and Toxiproxy URLs), and a Docker engine reached
    over TCP (``$DOCKER_HOST``), which the compose stack's faults talk to."""
    started = [host_of(url) for url in stack_urls if url]
    docker = os.environ.get("DOCKER_HOST", "")
    engine = [host_of(docker)] if docker.startswith(("tcp://", "http://", "https://")) else []
    return TargetPolicy.of(allow_targets, hosts_from_env(), [h for h in started + engine if h])


def dsn_hosts(dsn: str) -> tuple[str, ...]:
    """The TCP hosts a PostgreSQL URI connects to (``postgresql://u:p@h1:5432,h2/db?host=h3``);
    Unix-socket paths (``/run/postgresql``) and an empty host (the local socket) are left out."""
    parts = urlsplit(dsn.strip())
    hosts: list[str] = []
    netloc = parts.netloc.rpartition("@")[2]
    for item in netloc.split(","):
        host = item[1 : item.index("]")] if item.startswith("[") and "]" in item else item
        hosts.append(host.rsplit(":", 1)[0] if not item.startswith("[") else host)
    for query in parts.query.split("&"):
        key, _, value = query.partition("=")
        if key == "host":
            hosts += value.split(",")
    return tuple(h for h in (unquote(h) for h in hosts) if h and not h.startswith("/"))


def check_dsn(dsn: str, policy: TargetPolicy, what: str) -> None:
    """``TargetRefused`` when a database URI (a post-run check's ``dsn``, after ``${VAR}``
    expansion) would connect to a host the policy does not allow."""
    for host in dsn_hosts(dsn):
        if not policy.permits(host):
            policy.check_url(
                f"postgresql://[{host}]" if ":" in host else f"postgresql://{host}", what
            )


# --- JSON from files and requests others may have written -----------------------------------------

# A string (escapes included) or one bracket: what the depth scan looks at, nothing else.
_JSON_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{\]}]')


def json_depth_problem(text: str, max_depth: int = MAX_NESTING) -> str | None:
    """``"nested deeper than N levels"`` when ``text`` opens more than ``max_depth`` arrays
    and objects inside each other, else None. A scan of the brackets outside strings, done
    before parsing: ``json.loads`` recurses once per level and dies of ``RecursionError``."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels at offset {match.start()}"
        elif piece in ("]", "}"):
            depth -= 1
    return None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # json.loads takes NaN and Infinity; JSON does not


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {clip(text)} is out of range")  # 1e400 would be inf
    return value


def loads_json(text: str | bytes, max_depth: int = MAX_NESTING) -> Any:
    """``json.loads`` for text from outside (a journal line, a request body): ``ValueError``
    (as ``json.loads`` raises) for nesting deeper than ``max_depth``, checked before parsing,
    and for ``NaN``/``Infinity`` (not JSON) and numbers too large for a float."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError too
    problem = json_depth_problem(text, max_depth)
    if problem:
        raise ValueError(f"JSON {problem}")
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


# --- the Locust processes -------------------------------------------------------------------------


def guard_sockets(
    policy: TargetPolicy,
    *,
    extra_hosts: Callable[[], Iterable[str]] = tuple,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Refuse, in this process, every TCP connection to an address the policy does not allow.

    Installed in the Locust master and workers, after gevent has patched ``socket``: whatever
    library a locustfile uses (Locust's clients, requests, httpx, raw sockets), a connection
    to another host fails with ``PermissionError`` before anything is sent, and Locust records
    the request as failed (status 0). ``extra_hosts``: hosts allowed at the time of the call
    (a remote worker learns the target host from the master only when the load starts).
    Unix sockets (the Docker engine's) and connections Locust makes itself through ZeroMQ are
    not TCP sockets of this module and are not affected.
    """
    say = warn or _stderr
    allowed_ips = set(policy.addresses())
    warned: set[str] = set()
    resolved: dict[frozenset[str], frozenset[str]] = {}
    cls: Any = socket.socket

    def permitted(address: object) -> tuple[bool, str]:
        if not isinstance(address, tuple) or not address:
            return True, ""  # AF_UNIX paths and the like
        host = str(address[0])
        if policy.permits(host) or host in allowed_ips:
            return True, host
        dynamic = TargetPolicy.of(extra_hosts())
        if dynamic.permits(host):
            return True, host
        if dynamic.allowed not in resolved:  # resolve each set of names once, not per connect
            resolved[dynamic.allowed] = dynamic.addresses()
        return host in resolved[dynamic.allowed], host

    def refuse(host: str) -> PermissionError:
        message = (
            f"harness: connection to {host} refused: not loopback nor an allowed target "
            f"(allow_targets, --allow-target or {ALLOW_TARGETS_ENV})"
        )
        if host not in warned:
            warned.add(host)
            say(message)
        return PermissionError(errno.EACCES, message)

    original_connect = cls.connect
    original_connect_ex = cls.connect_ex

    def connect(self: Any, address: Any) -> Any:
        ok, host = permitted(address)
        if not ok:
            raise refuse(host)
        return original_connect(self, address)

    def connect_ex(self: Any, address: Any) -> Any:
        ok, host = permitted(address)
        if not ok:
            refuse(host)
            return errno.EACCES
        return original_connect_ex(self, address)

    if getattr(original_connect, "_harness_guard", False):
        return  # installed once per process
    connect._harness_guard = True  # type: ignore[attr-defined]
    cls.connect = connect
    cls.connect_ex = connect_ex


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
