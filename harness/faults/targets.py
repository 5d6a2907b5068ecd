"""The blast-radius check of a fault record read back from a journal (``harness rollback`` and
the rollback every run does first).

A journal is a file on disk: whoever can write one must not gain a way to make a revert send
requests (or the shop's admin token) to a host the target policy (:mod:`harness.safety`) does
not allow. So every URL a record's revert may call is checked before the fault is rebuilt. An
address of the stack the record names also passes when that stack says it is its own (a compose
project's container address, which Docker frees when the container is killed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final

from harness.errors import HarnessError
from harness.faults.stackref import stack_from_ref
from harness.safety import TargetPolicy, host_of

__all__ = ["check_record", "record_urls"]

# The fields of a fault record (Fault.to_record) that hold URLs its revert calls.
_URL_FIELDS: Final = ("toxiproxy_url", "healthz_url")
_URL_LIST_FIELDS: Final = ("admin_urls",)
# URLs one level down: the calls of an ``http`` fault (its URL's host is literal, see
# harness.faults.http_call), both checked, since a rebuilt fault may be injected again.
# The stack reference: an external stack's URLs are what its status (asked by an idempotent
# revert) calls.
_NESTED_URL_FIELDS: Final = (
    ("inject", "url"),
    ("revert", "url"),
    ("stack", "entry_url"),
    ("stack", "toxiproxy_url"),
)


def _record_fields(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, URL) for every URL a record's revert may call."""
    urls: list[tuple[str, object]] = [(key, record.get(key)) for key in _URL_FIELDS]
    for key in _URL_LIST_FIELDS:
        values = record.get(key)
        urls += [(key, value) for value in values] if isinstance(values, list) else []
    for outer, inner in _NESTED_URL_FIELDS:
        nested = record.get(outer)
        if isinstance(nested, Mapping):
            urls.append((f"{outer}.{inner}", nested.get(inner)))
    return [(key, value) for key, value in urls if isinstance(value, str) and value]


def record_urls(record: Mapping[str, Any]) -> list[str]:
    """Every URL a record's revert may call."""
    return [url for _, url in _record_fields(record)]


def _record_stack_hosts(record: Mapping[str, Any], hosts: list[str]) -> tuple[str, ...]:
    """Those of ``hosts`` that the stack the record names says are its own. Only a compose
    project is asked (of the Docker engine on this machine: a project there is a stack the
    harness runs here); a local stack's hosts are loopback, an external one's its URLs."""
    ref = record.get("stack")
    if not isinstance(ref, Mapping) or ref.get("kind") != "compose":
        return ()
    owned: list[str] = []
    with contextlib.suppress(HarnessError, OSError, ValueError, KeyError):
        stack = stack_from_ref(ref, required=False)
        if stack is not None:
            owned += [host for host in hosts if stack.owns_host(host)]
    return tuple(owned)


def check_record(record: object, policy: TargetPolicy) -> None:
    """``TargetRefused`` when a fault record's revert would call a host the policy does not
    allow."""
    if not isinstance(record, Mapping):
        return  # the factory refuses it with its own message
    name = record.get("name")
    what = f"fault record {name!r}"
    checked = _record_fields(record)
    refused = [host_of(value) for _, value in checked if not policy.permits(host_of(value))]
    if refused:
        # Only then ask the record's stack (Docker, for a compose project) about its addresses.
        policy = TargetPolicy(policy.allowed | set(_record_stack_hosts(record, refused)))
    for key, value in checked:
        policy.check_url(value, f"{what}: {key}")
