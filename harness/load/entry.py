"""What the master and the worker processes share: their logging, and loading the locustfile.

Imported only inside Locust processes (it imports Locust).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from locust.user import User
from locust.util.load_locustfile import load_locustfile

from harness.errors import BadInputError

__all__ = ["configure_logging", "load_user_classes"]

logger = logging.getLogger("harness.load")


def configure_logging(role: str) -> None:
    """Warnings and errors only, one line each: the progress line is what a person watches."""
    logging.basicConfig(
        level=logging.WARNING, format=f"harness {role}: %(message)s", stream=sys.stderr
    )


def load_user_classes(locustfile: Path, wanted: Sequence[str] = ()) -> list[type[User]]:
    """The locustfile's User classes: those named in ``wanted``, or every runnable one."""
    try:
        found, shapes = load_locustfile(str(locustfile))
    except SystemExit:
        raise BadInputError(f"{locustfile}: Locust could not load it") from None
    except Exception as exc:
        # A locustfile is user code: anything may go wrong in it; say what, not a traceback.
        raise BadInputError(
            f"{locustfile}: importing it failed: {type(exc).__name__}: {exc}"
        ) from None
    if shapes:
        logger.warning(
            "%s: its LoadTestShape is ignored; the scenario's phases shape the load", locustfile
        )
    if not wanted:
        if not found:
            raise BadInputError(f"{locustfile}: defines no Locust User class to run")
        return list(found.values())
    missing = [name for name in wanted if name not in found]
    if missing:
        have = ", ".join(sorted(found)) or "none"
        raise BadInputError(
            f"{locustfile}: no User class {missing[0]!r} (it has: {have}); "
            "see load.user_classes in the scenario"
        )
    return [found[name] for name in wanted]
