"""Reading a scenario file: a strict safe YAML loader, then the model, and every problem as one
line naming the file (:mod:`harness.scenario.messages`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# types-PyYAML is not a dev dependency yet; the ignore is for then and for now.
import yaml

from harness.errors import BadInputError, clip
from harness.fields import MAX_NESTING, show
from harness.scenario.messages import validate
from harness.scenario.model import Scenario

__all__ = ["MAX_SCENARIO_BYTES", "load_scenario", "parse_scenario"]

MAX_SCENARIO_BYTES = 1_000_000


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, but a key written twice in one mapping is an error: PyYAML would keep
    the last one silently, and a duplicated ``for:`` is as easy to miss as a typo."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *defaults" may be overridden by keys written beside it
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key: construct_mapping reports that itself
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {show(key)}",
                key_node.start_mark,
            )
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# libyaml's parser, when PyYAML was built with it: several times faster on the same documents.
# A document it refuses is read again by the pure-Python parser, whose messages are the ones this
# module words its errors from (the two parsers say the same problems in different words).
_CSafeLoader: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)
_FastStrictLoader: type[yaml.SafeLoader] = _StrictLoader
if _CSafeLoader is not None:

    class _CStrictLoader(_CSafeLoader):  # type: ignore[valid-type,misc]
        """:class:`_StrictLoader` on libyaml."""

    _CStrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
    )
    _FastStrictLoader = _CStrictLoader


class _TooDeep(Exception):
    """The document nests deeper than :data:`MAX_NESTING` (the message says where)."""


def _load(text: str) -> Any:
    """The document in ``text``: parsed fast, and parsed again for the words of an error."""
    try:
        too_deep = _nesting_problem(text, _FastStrictLoader)
        if too_deep is None:
            return yaml.load(text, Loader=_FastStrictLoader)  # noqa: S506  # a SafeLoader
    except yaml.YAMLError:
        if _FastStrictLoader is _StrictLoader:
            raise
    too_deep = _nesting_problem(text, _StrictLoader)
    if too_deep:
        raise _TooDeep(too_deep)
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # a SafeLoader subclass


def load_scenario(path: str | os.PathLike[str], *, allow_targets: Iterable[str] = ()) -> Scenario:
    """Read and validate a scenario file. Every problem is a one-line :class:`BadInputError`.
    ``allow_targets``: hosts allowed besides the file's own (``--allow-target``), merged into
    the scenario's ``allow_targets`` so the run directory records them too."""
    path = Path(path)
    where = _where(path)
    try:
        # Read at most one byte past the bound: /dev/zero or a FIFO must not be read forever.
        with path.open("rb") as file:
            data = file.read(MAX_SCENARIO_BYTES + 1)
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInputError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise BadInputError(f"{where}: larger than {MAX_SCENARIO_BYTES} bytes; not a scenario")
    return parse_scenario(text, path, allow_targets=allow_targets)


def _where(path: Path) -> str:
    """The file as messages name it: a very long path keeps both ends."""
    return clip(str(path), 200, middle=True)


def parse_scenario(
    text: str, path: str | os.PathLike[str], *, allow_targets: Iterable[str] = ()
) -> Scenario:
    """Validate scenario ``text`` as if read from ``path``: messages name it, relative paths in
    it resolve against its directory, and its name defaults to the file's stem."""
    path = Path(path)
    where = _where(path)
    try:
        # The nesting is measured on the parser's events first: building the objects (PyYAML's
        # composer and constructor) recurses once per level and would die of RecursionError.
        data = _load(text)
    except _TooDeep as exc:
        raise BadInputError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{where}: {_yaml_problem(exc)}") from None
    if data is None:
        raise BadInputError(f"{where}: the file is empty; a scenario needs at least load.phases")
    if not isinstance(data, dict):
        raise BadInputError(
            f"{where}: expected a mapping of keys (name, load, ...), got {show(data)}"
        )
    data = {"name": path.stem, **data}
    extra = list(allow_targets)
    listed = data.get("allow_targets")
    if extra and (listed is None or isinstance(listed, list)):  # else: its own error, below
        data["allow_targets"] = [*(listed or []), *(h for h in extra if h not in (listed or []))]
    return validate(
        Scenario, data, source=where, context={"base_dir": os.path.abspath(path.parent)}
    )


def _nesting_problem(text: str, loader: type[yaml.SafeLoader]) -> str | None:
    """Where the document nests lists and mappings deeper than :data:`MAX_NESTING`, if it
    does. The parser keeps its own stack (it does not recurse), so this is safe at any depth."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                return f"{where}lists and mappings nested deeper than {MAX_NESTING} levels"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "could not be read"
        return f"line {mark.line + 1}, column {mark.column + 1}: bad YAML: {problem}"
    # ReaderError (a control character) has a position but no line; its first line says it all.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"bad YAML: {first}"
