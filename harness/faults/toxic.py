"""Toxiproxy faults: toxics on a named proxy, and a proxy disabled (``down``).

Every toxic the harness adds is named ``harness-<fault name>`` (plus a suffix when one fault adds
several), so a revert in another process finds it by name, and it never touches a toxic somebody
else added. A revert that finds nothing to remove (the toxic, or the whole proxy, is gone) has
nothing to do. A Toxiproxy that does not answer is an error, unless the stack says its Toxiproxy
process is gone: its toxics went with it, as it keeps them in memory only. Where this process
renews a fault lease on that Toxiproxy (:mod:`harness.faults.lease`), each toxic, and a proxy it
disables, is attached to it, so the server lifts them by itself should this process die without
reverting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Final, Literal, NamedTuple, Self, get_args

from pydantic import (
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from harness.errors import BadInputError, ProxyConflict, ProxyNotFound, ToxiproxyError
from harness.faults.base import RECORD_VERSION, Fault, record_str
from harness.faults.lease import current_lease
from harness.faults.model import FaultModel, TargetKind
from harness.faults.stackref import stack_ref, toxiproxy_is_gone
from harness.fields import FieldModel, Name, WholeNumber, invalid, number, one_of
from harness.proxy.client import ToxiproxyClient
from harness.stack import Stack, StackInfo

__all__ = [
    "TOXIC_ATTRIBUTES",
    "TOXIC_TYPES",
    "AddToxics",
    "DisableProxy",
    "ProxyDownFault",
    "ToxicFault",
    "ToxicParams",
    "ToxicSpec",
    "build_proxy_down_fault",
    "build_toxic_fault",
    "proxy_of",
    "toxic_name",
    "toxiproxy_of",
]

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
        lease = current_lease(self.toxiproxy_url)
        for spec in self.toxics:
            _add(client, self.proxy, spec, lease)

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
            stack=stack,  # found by fault_from_record (harness.faults.factory)
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
        # Under this process's fault lease, where there is one: enabled again by the server
        # should this process die without reverting.
        self._client().disable(self.proxy, lease=current_lease(self.toxiproxy_url))

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
            stack=stack,  # found by fault_from_record (harness.faults.factory)
        )

    def _client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_url, timeout_s=TOXIPROXY_TIMEOUT_S)


def _add(client: ToxiproxyClient, proxy: str, spec: ToxicSpec, lease: str | None) -> None:
    try:
        _send_add(client, proxy, spec, lease)
    except ProxyConflict:
        # A toxic by our name is ours, left by an earlier try that never reverted (a crash):
        # replace it, so what is in force is what this fault asks for.
        _remove(client, proxy, spec.name)
        _send_add(client, proxy, spec, lease)


def _send_add(client: ToxiproxyClient, proxy: str, spec: ToxicSpec, lease: str | None) -> None:
    client.add_toxic(
        proxy,
        spec.type,
        name=spec.name,
        stream=spec.stream,
        toxicity=spec.toxicity,
        attributes=dict(spec.attributes),
        lease=lease,
    )


def _remove(client: ToxiproxyClient, proxy: str, name: str) -> None:
    # Not found: the toxic, or its whole proxy, is gone already.
    with contextlib.suppress(ProxyNotFound):
        client.remove_toxic(proxy, name)


# --- the scenario's side: the models of toxic and down entries, and the faults they build -----

ToxicType = Literal[
    "latency", "bandwidth", "timeout", "reset_peer", "slow_close", "limit_data", "slicer"
]
Stream = Literal["upstream", "downstream"]

TOXIC_TYPES: tuple[ToxicType, ...] = get_args(ToxicType)


class _ToxicAttribute(NamedTuple):
    unit: str
    required: bool
    minimum: int


# Toxiproxy treats a missing attribute as 0. Where 0 makes the toxic pointless (or the embedded
# server refuses it), the attribute is required, so a forgotten value is an error, not a no-op.
TOXIC_ATTRIBUTES: dict[ToxicType, dict[str, _ToxicAttribute]] = {
    "latency": {
        "latency": _ToxicAttribute("ms", True, 0),
        "jitter": _ToxicAttribute("ms", False, 0),
    },
    "bandwidth": {"rate": _ToxicAttribute("KB/s", True, 1)},
    "timeout": {"timeout": _ToxicAttribute("ms, 0 = never closed", False, 0)},
    "reset_peer": {"timeout": _ToxicAttribute("ms", False, 0)},
    "slow_close": {"delay": _ToxicAttribute("ms", True, 0)},
    "limit_data": {"bytes": _ToxicAttribute("bytes", True, 0)},
    "slicer": {
        "average_size": _ToxicAttribute("bytes", True, 1),
        "size_variation": _ToxicAttribute("bytes", False, 0),
        "delay": _ToxicAttribute("µs", False, 0),
    },
}
_ALL_TOXIC_ATTRIBUTES = tuple(dict.fromkeys(a for own in TOXIC_ATTRIBUTES.values() for a in own))


class ToxicParams(FieldModel):
    """A Toxiproxy toxic. The attributes sit flat beside ``type`` as in the scenario file; only
    the type's own may be given (:data:`TOXIC_ATTRIBUTES`). :attr:`attributes` is the API body."""

    type: Annotated[ToxicType, PlainValidator(one_of(TOXIC_TYPES))]
    stream: Annotated[Stream, PlainValidator(one_of(get_args(Stream)))] = "downstream"
    toxicity: Annotated[float, PlainValidator(number(0, 1))] = 1.0
    latency: WholeNumber | None = None
    jitter: WholeNumber | None = None
    rate: WholeNumber | None = None
    timeout: WholeNumber | None = None
    delay: WholeNumber | None = None
    bytes: WholeNumber | None = None
    average_size: WholeNumber | None = None
    size_variation: WholeNumber | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_the_type(cls, data: object) -> object:
        # Spell out Toxiproxy's 0 for the type's optional attributes, so the model (and the run
        # directory's copy) says exactly what the toxic will do.
        kind = data.get("type") if isinstance(data, Mapping) else None
        if isinstance(data, Mapping) and isinstance(kind, str) and kind in TOXIC_ATTRIBUTES:
            own = TOXIC_ATTRIBUTES[kind]
            return {name: 0 for name, spec in own.items() if not spec.required} | dict(data)
        return data

    @model_validator(mode="after")
    def _attributes_fit_type(self) -> Self:
        own = TOXIC_ATTRIBUTES[self.type]
        for name in _ALL_TOXIC_ATTRIBUTES:
            value = getattr(self, name)
            if value is not None and name not in own:
                raise invalid(f"a {self.type} toxic takes {_attribute_list(own)}, not {name}", name)
        for name, spec in own.items():
            value = getattr(self, name)
            if value is None and spec.required:
                raise invalid(f"required for a {self.type} toxic ({spec.unit})", name)
            if value is not None and value < spec.minimum:
                raise invalid(
                    f"expected a whole number >= {spec.minimum} ({spec.unit}), got {value}", name
                )
        return self

    @property
    def attributes(self) -> dict[str, int]:
        """The type's attributes, as the Toxiproxy API takes them."""
        return {name: getattr(self, name) for name in TOXIC_ATTRIBUTES[self.type]}

    @model_serializer(mode="wrap")
    def _only_own_attributes(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        kept = {"type": data["type"], "stream": data["stream"], "toxicity": data["toxicity"]}
        return kept | self.attributes


def _attribute_list(own: Mapping[str, _ToxicAttribute]) -> str:
    return ", ".join(f"{name} ({spec.unit})" for name, spec in own.items())


class ProxyDownFault(FaultModel):
    """``down``: disable a Toxiproxy proxy, so the link refuses connections."""

    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["down"]
    target: Name


class ToxicFault(FaultModel):
    """``toxic``: add one toxic to a Toxiproxy proxy."""

    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["toxic"]
    target: Name
    params: ToxicParams


def build_toxic_fault(spec: ToxicFault, stack: Stack, info: StackInfo) -> Fault:
    """The toxic ``spec`` describes, on the proxy of ``stack`` it names."""
    params = spec.params
    toxic = ToxicSpec(
        name=toxic_name(spec.name),
        type=params.type,
        stream=params.stream,
        toxicity=params.toxicity,
        attributes=tuple(params.attributes.items()),
    )
    return AddToxics(spec.name, proxy_of(spec, info), (toxic,), toxiproxy_of(spec, info), stack)


def build_proxy_down_fault(spec: ProxyDownFault, stack: Stack, info: StackInfo) -> Fault:
    """The ``down`` fault ``spec`` describes, on the proxy of ``stack`` it names."""
    return DisableProxy(spec.name, proxy_of(spec, info), toxiproxy_of(spec, info), stack)


def proxy_of(spec: FaultModel, info: StackInfo) -> str:
    """The name of the proxy a Toxiproxy fault's target is (``BadInputError`` for a proxy the
    stack does not have)."""
    assert spec.target is not None  # the models of the Toxiproxy actions require one
    return info.proxy(spec.target).name


def toxiproxy_of(spec: FaultModel, info: StackInfo) -> str:
    """The Toxiproxy API URL a Toxiproxy fault goes through (``BadInputError`` without one)."""
    if not info.toxiproxy_url:
        raise BadInputError(f'fault "{spec.name}": {spec.action} needs a Toxiproxy API URL')
    return info.toxiproxy_url
