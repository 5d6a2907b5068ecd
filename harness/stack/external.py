"""The external stack: a service the harness did not start, named by its URLs.

``entry_url`` is where load goes. Faults reach it three ways, none of which needs the harness to
have started the service:

- ``toxiproxy_url``: the user's own Toxiproxy; its proxies (as its API lists them) are the links
  that ``toxic``, ``down`` and ``db-throttle`` faults act on.
- ``front_proxy: true``: the harness's own Toxiproxy server between the load and ``entry_url``
  (:mod:`harness.stack.front_proxy`), one proxy named ``edge``; load goes through it, so edge
  faults (down, latency, reset, HTTP aborts and delays, maintenance) work on any HTTP service.
- the ``exec`` and ``http`` fault families: the user's own commands and endpoints.

The harness starts nothing else and stops nothing of the service: ``down`` does nothing, and
instance faults (kill, pause, restart) have no instances to act on. Faults on it are journaled in
the harness's state directory like any other, so ``harness rollback`` finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from harness.errors import BadInputError, StackError, ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.stack.base import (
    DeclaredParts,
    Endpoint,
    ProcessState,
    ProcessStatus,
    Proxy,
    StackInfo,
    StackOptions,
    StackSection,
    StackStatus,
)
from harness.stack.front_proxy import EDGE, FrontProxy, RunningFront
from harness.stack.ports import PORT_FLAG
from harness.stack.topology import TOXIPROXY

__all__ = ["ExternalSection", "ExternalStack"]


class ExternalSection(StackSection, Protocol):
    """The key only kind external reads (:class:`harness.scenario.Stack` has it)."""

    @property
    def front_proxy(self) -> bool: ...


class ExternalStack:
    """The service at ``entry_url``, with its Toxiproxy at ``toxiproxy_url`` or the harness's
    front proxy in front of it (``front_proxy``), or neither."""

    kind: ClassVar[str] = "external"

    def __init__(
        self,
        entry_url: str,
        toxiproxy_url: str = "",
        *,
        state_dir: Path,
        front_proxy: bool = False,
    ) -> None:
        if front_proxy and toxiproxy_url:
            raise BadInputError(
                "stack.front_proxy: not with stack.toxiproxy_url (faults go to one Toxiproxy: "
                "yours, or the harness's front proxy)"
            )
        self.entry_url = entry_url
        self.toxiproxy_url = toxiproxy_url
        self.front_proxy = front_proxy
        self._state_dir = Path(state_dir).absolute()
        # Always true: the service was there before the harness, and stays after it.
        self.reused = True

    @classmethod
    def from_section(cls, section: StackSection, options: StackOptions) -> ExternalStack:
        if not section.entry_url:
            raise BadInputError("stack.entry_url: required for kind external")
        if options.ports:
            flag = PORT_FLAG[next(iter(options.ports))]
            raise BadInputError(
                f"{flag}: an external stack is not started by the harness (port options are "
                "for the local and compose stacks)"
            )
        # The scenario model has front_proxy for every kind (false unless external).
        front = bool(getattr(cast(ExternalSection, section), "front_proxy", False))
        return cls(
            section.entry_url,
            section.toxiproxy_url or "",
            state_dir=options.state_dir,
            front_proxy=front,
        )

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any], *, state_dir: Path) -> ExternalStack:
        entry, toxiproxy = ref.get("entry_url"), ref.get("toxiproxy_url", "")
        front = ref.get("front_proxy", False)
        if (
            ref.get("kind") != cls.kind
            or not isinstance(entry, str)
            or not entry
            or not isinstance(toxiproxy, str)
            or not isinstance(front, bool)
        ):
            raise BadInputError(f"not an external stack reference: {dict(ref)!r}")
        return cls(entry, toxiproxy, state_dir=state_dir, front_proxy=front)

    def to_ref(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "entry_url": self.entry_url,
            "toxiproxy_url": self.toxiproxy_url,
            "front_proxy": self.front_proxy,
        }

    @property
    def journal_dir(self) -> Path:
        return self._state_dir

    def owns_host(self, host: str) -> bool:
        return host in self.info().hosts()

    def declared_parts(self) -> DeclaredParts:
        """No instances (the harness did not start the service); its proxies are known once
        its Toxiproxy (or the front proxy) answers."""
        return DeclaredParts(instances=(), proxies=None)

    def check_ports(self) -> None:
        """Nothing: the harness binds no port of the service (the front proxy's is its own)."""

    # --- lifecycle: nothing of the service is started or stopped --------------------------------

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        if self.front_proxy:
            front = FrontProxy(self._state_dir).ensure(self._upstream())
            say(
                f"front proxy {EDGE!r} on {front.listen.address} in front of "
                f"{front.upstream.address} (Toxiproxy API {front.api_url})"
            )
        return self.info()

    def up(self) -> StackInfo:
        return self.bring_up(lambda line: None)

    def release(self) -> None:
        """Stop the front proxy once the run is over: the service is reached directly again."""
        if self.front_proxy:
            FrontProxy(self._state_dir).stop()

    def down(self) -> None:
        """The front proxy, if any; never the service, which the harness did not start."""
        self.release()

    def status(self) -> StackStatus:
        rows: list[ProcessStatus] = []
        if self.front_proxy:
            front = FrontProxy(self._state_dir).running()
            state = ProcessState.ALIVE if front is not None else ProcessState.DEAD
            api = front.api if front is not None else Endpoint("127.0.0.1", 0)
            rows.append(
                ProcessStatus(
                    "front-proxy", TOXIPROXY, front.pid if front else 0, state, bool(front), api
                )
            )
        elif self.toxiproxy_url:
            # Not the harness's to start or watch: taken as alive, so that a revert it cannot
            # reach is a failure to report, never a Toxiproxy "gone with its toxics".
            api = _endpoint_of(self.toxiproxy_url)
            rows.append(
                ProcessStatus("toxiproxy", TOXIPROXY, 0, ProcessState.ALIVE, True, api, "yours")
            )
        return StackStatus(location=self._state_dir, processes=tuple(rows))

    def info(self) -> StackInfo:
        if self.front_proxy:
            front = FrontProxy(self._state_dir).running()
            if front is None:
                raise StackError(
                    f"the front proxy of {self._state_dir} is not running (it runs while a run "
                    "against the external stack does)"
                )
            return self._info(_through(self.entry_url, front), front.api_url, (_edge(front),))
        proxies: tuple[Proxy, ...] = ()
        if self.toxiproxy_url:
            proxies = _listed_proxies(self.toxiproxy_url)
        return self._info(self.entry_url, self.toxiproxy_url, proxies)

    def _info(self, entry: str, toxiproxy: str, proxies: tuple[Proxy, ...]) -> StackInfo:
        return StackInfo(
            entry_url=entry,
            toxiproxy_url=toxiproxy,
            services=(),
            instances=(),
            proxies=proxies,
            admin_token="",
        )

    def _upstream(self) -> Endpoint:
        parts = urlsplit(self.entry_url)
        if parts.scheme != "http" or not parts.hostname:
            raise BadInputError(
                f"stack.entry_url: the front proxy needs an http:// URL with a host, got "
                f"{self.entry_url!r}"
            )
        return Endpoint(parts.hostname, parts.port or 80)

    # --- instance primitives: an external stack has no instances the harness controls ----------

    def kill(self, instance: str) -> None:
        self._no_instances(instance)

    def pause(self, instance: str) -> None:
        self._no_instances(instance)

    def resume(self, instance: str) -> None:
        self._no_instances(instance)

    def restart(self, instance: str) -> None:
        self._no_instances(instance)

    def _no_instances(self, instance: str) -> None:
        raise BadInputError(
            f"unknown instance {instance!r}: an external stack has no instances the harness "
            "controls (kill, pause and restart need a local or compose stack)"
        )


def _through(entry_url: str, front: RunningFront) -> str:
    """``entry_url`` with the front proxy's address in place of the service's."""
    parts = urlsplit(entry_url)
    return urlunsplit(parts._replace(netloc=front.listen.address))


def _edge(front: RunningFront) -> Proxy:
    return Proxy(EDGE, front.listen, front.upstream)


def _endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(parts.hostname or "", parts.port or 80)


def _listed_proxies(api_url: str) -> tuple[Proxy, ...]:
    """The proxies the user's Toxiproxy has, as its API lists them."""
    try:
        found = ToxiproxyClient(api_url, timeout_s=5).proxies()
    except ToxiproxyError as exc:
        raise StackError(f"the Toxiproxy API at {api_url} does not answer: {exc}") from exc
    return tuple(
        Proxy(p.name, _address(p.listen), _address(p.upstream))
        for p in sorted(found.values(), key=lambda p: p.name)
    )


def _address(address: str) -> Endpoint:
    host, _, port = address.rpartition(":")
    return Endpoint(host or "0.0.0.0", int(port) if port.isdigit() else 0)
