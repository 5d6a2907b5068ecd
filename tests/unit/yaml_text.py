"""YAML text of a test's document, written by libyaml's emitter where PyYAML has it.

The unit tests that write scenarios dump thousands of documents per run, and PyYAML's pure
Python emitter took a second of the unit tier's time for it; the harness reads what either
emitter writes the same way.
"""

from __future__ import annotations

from typing import Any

import yaml

_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def yaml_text(document: object, **options: Any) -> str:
    """``yaml.safe_dump(document, **options)``, faster."""
    text: str = yaml.dump(document, Dumper=_DUMPER, **options)
    return text
