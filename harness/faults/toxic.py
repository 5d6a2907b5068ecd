"""Toxiproxy faults: toxics on a named proxy, and a proxy disabled (``down``).

Every toxic the harness adds is named ``harness-<fault name>`` (plus a suffix when one fault adds
several), so a revert in another process finds it by name, and it never touches a toxic somebody
else added. A revert that finds nothing to remove (the toxic, or the whole proxy, is gone) has
nothing to do. A Toxiproxy that does not answer is an error, unless the stack says its Toxiproxy
process is gone: its toxics went with it, as it keeps them in memory only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from harness.errors import BadInputError, ProxyConflict, ProxyNotFound, ToxiproxyError
from harness.faults.base import RECORD_VERSION, record_str
from harness.faults.stackref import stack_from_ref, stack_ref, toxiproxy_is_gone
from harness.proxy.client import ToxiproxyClient
from harness.stack import Stack

__all__ = ["AddToxics", "DisableProxy", "ToxicSpec", "toxic_name"]

# Short: a revert loop must not hang on a Toxiproxy that stopped answering.
TOXIPROXY_TIMEOUT_S: Final = 5.0
TOXIC_PREFIX: Final = "harness-"


def toxic_name(fault_name: str, part: str = "") -> str:
    """The toxic's name: deterministic, so another process can remove it, and ours by prefix."""
    return f"{TOXIC_PREFIX}{fault_name}" + (f"-{part}" if part else "")


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic as the Toxiproxy API takes it."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    # Pairs, not a dict, so the spec is immutable all the way down.
    attributes: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        values = ", ".join(f"{key}={value}" for key, value in self.attributes)
        share = "" if self.toxicity == 1.0 else f", toxicity {self.toxicity:g}"
        return f"{self.type} toxic {self.name} ({values}; {self.stream}{share})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> ToxicSpec:
        attributes = data.get("attributes") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(attributes, Mapping):
            raise BadInputError(f"{where}: not a toxic: {data!r}")
        try:
            return cls(
                name=str(data["name"]),
                type=str(data["type"]),
                stream=str(data["stream"]),
                toxicity=float(data["toxicity"]),
                attributes=tuple((str(k), int(v)) for k, v in attributes.items()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"{where}: not a toxic: {data!r} ({exc!r})") from None


@dataclass(frozen=True)
class AddToxics:
    """Add one or more toxics to one proxy; revert removes each of them."""

    name: str
    proxy: str
    toxics: tuple[ToxicSpec, ...]
    toxiproxy_url: str
    # Only asked whether Toxiproxy is gone, when it does not answer a revert.
    stack: Stack | None = field(default=None, compare=False)

    kind: ClassVar[str] = "toxic"
    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> str:
        return self.proxy

    def describe(self) -> str:
        return f"{' + '.join(t.describe() for t in self.toxics)} on {self.proxy}"

    def inject(self) -> None:
        client = self._client()
        for spec in self.toxics:
            _add(client, self.proxy, spec)

    def revert(self) -> None:
        client = self._client()
        problems = []
        for spec in self.toxics:  # each one, even when another fails
            try:
                _remove(client, self.proxy, spec.name)
            except ToxiproxyError as exc:
                if exc.status == 0 and toxiproxy_is_gone(self.stack):
                    return
                problems.append(f"{spec.name}: {exc}")
        if problems:
            raise ToxiproxyError(
                f"could not remove toxics from {self.proxy}: {'; '.join(problems)}"
            )

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": self.proxy,
            "toxiproxy_url": self.toxiproxy_url,
            "toxics": [spec.to_json() for spec in self.toxics],
            "stack": stack_ref(self.stack),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        name = record_str(record, "name")
        toxics = record.get("toxics")
        if not isinstance(toxics, list) or not toxics:
            raise BadInputError(f"fault record {name!r}: toxics: expected a list, got {toxics!r}")
        return cls(
            name=name,
            proxy=record_str(record, "target"),
            toxics=tuple(ToxicSpec.from_json(t, f"fault record {name!r}") for t in toxics),
            toxiproxy_url=record_str(record, "toxiproxy_url"),
            stack=stack or stack_from_ref(record.get("stack"), required=False),
        )

    def _client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_url, timeout_s=TOXIPROXY_TIMEOUT_S)


@dataclass(frozen=True)
class DisableProxy:
    """``down``: disable the proxy (it stops listening, its connections close); revert enables
    it again."""

    name: str
    proxy: str
    toxiproxy_url: str
    stack: Stack | None = field(default=None, compare=False)

    kind: ClassVar[str] = "down"
    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> str:
        return self.proxy

    def describe(self) -> str:
        return f"disable proxy {self.proxy} (connections refused)"

    def inject(self) -> None:
        self._client().disable(self.proxy)

    def revert(self) -> None:
        try:
            self._client().enable(self.proxy)
        except ProxyNotFound:
            return  # no proxy, nothing disabled
        except ToxiproxyError as exc:
            if exc.status == 0 and toxiproxy_is_gone(self.stack):
                return
            raise

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": self.proxy,
            "toxiproxy_url": self.toxiproxy_url,
            "stack": stack_ref(self.stack),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        return cls(
            name=record_str(record, "name"),
            proxy=record_str(record, "target"),
            toxiproxy_url=record_str(record, "toxiproxy_url"),
            stack=stack or stack_from_ref(record.get("stack"), required=False),
        )

    def _client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_url, timeout_s=TOXIPROXY_TIMEOUT_S)


def _add(client: ToxiproxyClient, proxy: str, spec: ToxicSpec) -> None:
    try:
        _send_add(client, proxy, spec)
    except ProxyConflict:
        # A toxic by our name is ours, left by an earlier try that never reverted (a crash):
        # replace it, so what is in force is what this fault asks for.
        _remove(client, proxy, spec.name)
        _send_add(client, proxy, spec)


def _send_add(client: ToxiproxyClient, proxy: str, spec: ToxicSpec) -> None:
    client.add_toxic(
        proxy,
        spec.type,
        name=spec.name,
        stream=spec.stream,
        toxicity=spec.toxicity,
        attributes=dict(spec.attributes),
    )


def _remove(client: ToxiproxyClient, proxy: str, name: str) -> None:
    # Not found: the toxic, or its whole proxy, is gone already.
    with contextlib.suppress(ProxyNotFound):
        client.remove_toxic(proxy, name)
