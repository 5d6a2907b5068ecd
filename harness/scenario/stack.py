"""The scenario's ``stack`` section: where the system under test comes from (local, compose or
external), and for compose its project and topology."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Self, TypeAlias

from pydantic import PlainValidator, field_serializer, field_validator, model_validator

from harness.faults.model import TargetKind
from harness.fields import FieldModel, Name, invalid, one_of, show
from harness.scenario.fields import (
    Address,
    ExistingPath,
    Port,
    Url,
    UrlPath,
    compose_project,
    unique,
)
from harness.stack.registry import KINDS

__all__ = [
    "ComposeBackends",
    "ComposeEntry",
    "ComposeToxiproxy",
    "ProxyLink",
    "Stack",
    "StackKind",
    "local_target_problem",
]

# One of the stack registry's kinds (harness.stack.registry.KINDS): a new backend is accepted
# here without a change.
StackKind: TypeAlias = str

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# stack.env: the sample shop reads SHOP_* settings and nothing else. A user's compose file may
# read any variable, but not one that changes how a program is loaded or what it runs (the
# dynamic linker's, Python's, the shell's, Docker's and compose's own): those would reach the
# docker compose process the harness starts, not the file.
_SHOP_ENV = re.compile(r"SHOP_[A-Z0-9_]+")
_USER_ENV = re.compile(r"[A-Z][A-Z0-9_]*")
_ENV_REFUSED = re.compile(
    r"(LD_|DYLD_|PYTHON|DOCKER_|COMPOSE_|BUILDKIT_|GIT_|SSH_|NODE_|PERL|RUBY|LC_).*"
    r"|PATH|HOME|USER|SHELL|ENV|BASH_ENV|IFS|TMPDIR|LANG|HOSTALIASES|LOCALDOMAIN|RES_OPTIONS"
    r"|GCONV_PATH|MALLOC_.*|HTTPS?_PROXY|NO_PROXY|ALL_PROXY|SSL_CERT_.*|REQUESTS_CA_BUNDLE"
)
_LOCAL_INSTANCE = re.compile(r"app-[1-9][0-9]*")
_LOCAL_PROXY = re.compile(r"lb-app-[1-9][0-9]*|app-db")
_COMPOSE_ONLY = ("compose_file", "project", "entry", "backends", "toxiproxy", "proxies")


class ComposeEntry(FieldModel):
    """The compose service load is sent to, the port it listens on in its container (published
    on the host), and the path that answers 200 once the system is ready to serve."""

    service: Name = "caddy"
    port: Port = 80
    ready_path: UrlPath = "/readyz"


class ComposeBackends(FieldModel):
    """The services whose containers are the instances kill, pause and restart act on."""

    services: tuple[Name, ...] = ("app-1", "app-2", "app-3")
    port: Port = 8000
    health_path: UrlPath = "/healthz"

    @model_validator(mode="after")
    def _some_once_each(self) -> Self:
        if not self.services:
            raise invalid("expected at least one service", "services")
        for index, service in enumerate(self.services):
            if service in self.services[:index]:
                raise invalid(f"{show(service)} is listed twice", "services", index)
        return self


class ComposeToxiproxy(FieldModel):
    """The compose service that runs Toxiproxy, and its API port in the container."""

    service: Name = "toxiproxy"
    port: Port = 8474


class ProxyLink(FieldModel):
    """A Toxiproxy proxy (the ``POST /populate`` format): a link faults can slow or cut.
    ``listen`` is inside the Toxiproxy container; ``upstream`` as that container reaches it."""

    name: Name
    listen: Address
    upstream: Address


class Stack(FieldModel):
    """Where the system under test comes from."""

    kind: Annotated[StackKind, PlainValidator(one_of(KINDS))] = "local"
    entry_url: Url | None = None
    toxiproxy_url: Url | None = None
    # Kind external: the harness's own Toxiproxy in front of entry_url (harness.stack.front_proxy),
    # so edge faults work on a service with no Toxiproxy of its own.
    front_proxy: bool = False
    compose_file: ExistingPath | None = None
    # Kind compose: the project and its topology; None means the sample stack's (compose/).
    project: Annotated[str, PlainValidator(compose_project)] | None = None
    entry: ComposeEntry | None = None
    backends: ComposeBackends | None = None
    toxiproxy: ComposeToxiproxy | None = None
    proxies: tuple[ProxyLink, ...] = ()
    # Pairs, not a dict, so the frozen model is frozen all the way down; the same shape as
    # LocalStackConfig.app_env.
    env: tuple[tuple[str, str], ...] = ()

    @field_validator("env", mode="before")
    @classmethod
    def _env_pairs(cls, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise invalid(f"expected a mapping of NAME: value, got {show(value)}")
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
                raise invalid(f"expected an environment variable name, got {show(key)}")
            # An int is unambiguous ("32"); a float or a YAML flag (yes -> True) is not.
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise invalid(f'expected a string (quote it: "..."), got {show(item)}', key)
            pairs.append((key, item))
        return tuple(sorted(pairs))

    @field_serializer("env")
    def _env_as_mapping(self, env: tuple[tuple[str, str], ...]) -> dict[str, str]:
        return dict(env)

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.kind == "external" and self.entry_url is None:
            raise invalid("required for kind external (the URL load is sent to)", "entry_url")
        if self.kind != "compose":
            for key in _COMPOSE_ONLY:
                if getattr(self, key) not in (None, ()):
                    raise invalid(f"only for kind compose, not {self.kind}", key)
        unique([p.name for p in self.proxies], "proxies", "name", "proxy")
        if self.env and self.kind == "external":
            raise invalid("only for stacks the harness runs, not external", "env")
        for key, _ in self.env:
            problem = self._env_name_problem(key)
            if problem:
                raise invalid(problem, "env", key)
        if self.front_proxy and self.kind != "external":
            raise invalid(
                f"only for kind external (a {self.kind} stack has its own Toxiproxy)",
                "front_proxy",
            )
        if self.front_proxy and self.toxiproxy_url is not None:
            raise invalid(
                "not with toxiproxy_url: faults go to one Toxiproxy, yours or the harness's "
                "front proxy",
                "front_proxy",
            )
        if (
            self.front_proxy
            and self.entry_url is not None
            and not self.entry_url.startswith("http://")
        ):
            raise invalid("the front proxy needs an http:// entry_url", "front_proxy")
        return self

    def _env_name_problem(self, key: str) -> str | None:
        """Why ``key`` may not be set in ``stack.env`` of this stack, or None."""
        if self.kind == "local" or self.compose_file is None:
            if not _SHOP_ENV.fullmatch(key):
                return f"expected a SHOP_* setting of the sample shop, got {show(key)}"
        elif not _USER_ENV.fullmatch(key) or _ENV_REFUSED.fullmatch(key):
            return (
                "expected a variable your compose file reads (upper case, not one that changes "
                f"how programs load or run, like LD_* or PYTHON*), got {show(key)}"
            )
        return None


def local_target_problem(target_kind: TargetKind | None, action: str, target: str) -> str | None:
    """Why ``target`` cannot be what an ``action`` fault hurts on the local stack, whose names
    are known (instances ``app-<n>``, proxies ``lb-app-<n>`` and ``app-db``); None when it can."""
    if target_kind == "instance" and not _LOCAL_INSTANCE.fullmatch(target):
        why = (
            f" ({target} is a Toxiproxy proxy: use toxic or down)"
            if _LOCAL_PROXY.fullmatch(target)
            else ""
        )
        return f"{action} needs a shop instance like app-1, got {show(target)}{why}"
    if target_kind == "proxy" and not _LOCAL_PROXY.fullmatch(target):
        why = (
            f" (the proxy in front of {target} is lb-{target})"
            if _LOCAL_INSTANCE.fullmatch(target)
            else ""
        )
        return f"{action} needs a Toxiproxy proxy like lb-app-1 or app-db, got {show(target)}{why}"
    return None
