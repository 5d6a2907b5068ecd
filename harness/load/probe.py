"""``python -m harness.load.probe LOCUSTFILE``: import a locustfile in a process of its own and
print, as one JSON line on stdout, the User classes it defines (``{"classes": [...]}``) or why it
would not import (``{"error": "..."}``).

The preflight (:mod:`harness.run.preflight`) runs this with a timeout: a scenario's code is never
executed in the harness's own process, and a locustfile that hangs or exits at import costs a
few seconds, not a run. It loads the file as the Locust master and workers will (Locust's own
loader, as :func:`harness.load.entry.load_user_classes` does), so what passes here loads there.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path


def probe(locustfile: Path) -> dict[str, object]:
    """What :func:`main` prints for ``locustfile``: the names the master would find its User
    classes by (``load.user_classes``)."""
    from locust.util.load_locustfile import load_locustfile

    # The locustfile's own prints must not mix with the one line the caller reads.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            found, _shapes = load_locustfile(str(locustfile))
        except BaseException as exc:  # user code: a SystemExit, anything; say what it was
            return {"error": f"importing it failed: {type(exc).__name__}: {exc}"}
    return {"classes": sorted(found)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"error": "usage: python -m harness.load.probe LOCUSTFILE"}))
        return 2
    print(json.dumps(probe(Path(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
