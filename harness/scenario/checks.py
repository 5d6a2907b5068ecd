"""The scenario's judging sections: ``slos`` (what the run is judged by), ``guards`` (what
aborts it while it goes) and ``checks`` (numbers read before the load and after the run)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Self, TypeAlias

from pydantic import field_serializer, field_validator, model_validator

from harness.fields import FieldModel, Name, invalid, show
from harness.scenario.fields import Text, UrlPath

__all__ = ["Guard", "NoData", "PostCheck", "Slo"]

# What an SLO with nothing to measure (no traffic in its window) comes to; see the README's
# "Outcomes". Not applicable (nothing to measure, for a reason that is no failure) is not this.
NoData: TypeAlias = Literal["pass", "fail"]

_FIELD_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


class _Check(FieldModel):
    """An expression the verdict code parses: a plain string, or ``{name, expr}``."""

    name: Text
    expr: Text

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: object) -> object:
        if isinstance(data, str):
            if not data.strip():
                raise invalid(f"expected an expression, got {show(data)}")
            return {"name": data, "expr": data}
        if not isinstance(data, Mapping):
            raise invalid(f"expected an expression string or {{name, expr}}, got {show(data)}")
        return data


class Slo(_Check):
    """An assertion the run is judged by; one JUnit test case each, so names are unique.
    ``no_data`` overrides the scenario's ``no_data`` for this SLO."""

    no_data: NoData | None = None


class Guard(_Check):
    """A condition that aborts the run while it goes (exit code 4)."""


class PostCheck(FieldModel):
    """A number read from the system under test before the load and after the run (once every
    fault is reverted), which SLOs compare: ``check(NAME)``, ``check(NAME, delta)``.

    ``sql``: a query answering one number, run against the stack's own database (on a compose
    stack with ``psql`` inside its database container); an external stack needs ``dsn``.
    ``http``: GET this path on the entry URL; ``field`` is a dotted path to a number in the JSON
    answer (``stats.orders``, ``items.0.count``), the whole answer when omitted. ``headers`` and
    ``dsn`` may name environment variables as ``${NAME}``, read when the check runs; nothing of
    a check ever reaches a shell."""

    name: Name
    sql: Text | None = None
    dsn: Text | None = None
    http: UrlPath | None = None
    headers: tuple[tuple[str, str], ...] = ()
    field: Text | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _header_pairs(cls, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise invalid(f"expected a mapping of Header: value, got {show(value)}")
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
                raise invalid(f"expected an HTTP header name, got {show(key)}")
            if not isinstance(item, str) or "\n" in item or "\r" in item:
                raise invalid(f"expected a one-line string, got {show(item)}", key)
            pairs.append((key, item))
        return tuple(pairs)

    @field_serializer("headers")
    def _headers_as_mapping(self, headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
        return dict(headers)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.sql is None) == (self.http is None):
            raise invalid("expected exactly one of sql (a query) or http (a path to GET)")
        if self.sql is not None:
            for key in ("headers", "field"):
                if getattr(self, key):
                    raise invalid("only for an http check", key)
        elif self.dsn is not None:
            raise invalid("only for an sql check", "dsn")
        if self.field is not None and not _FIELD_PATH.fullmatch(self.field):
            raise invalid(f"expected a dotted path like stats.orders, got {show(self.field)}")
        return self
