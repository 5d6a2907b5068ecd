"""Reports written without drawing their plots, for tests whose subject is not the plots.

Drawing the three plots costs over half a second of matplotlib layout however small the run,
and a module about exit codes, notes or summary.json writes dozens of reports. Within
:func:`plots_not_drawn` every report embeds a 1-pixel PNG per plot instead: the same keys and a
real PNG, so the page is whole. test_report_plots.py and test_report_html.py draw the plots for
real, the latter through the same ``write_reports``.

The ``plots_not_drawn`` fixture (tests/unit/conftest.py) wraps one test; a module-scoped fixture
that writes a report uses the context manager itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest


@cache
def tiny_png() -> bytes:
    # deferred: Pillow loads only for the modules that use this
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def plots_not_drawn() -> Iterator[None]:
    # harness.report.write_report looks render_all up on the plots module at each call.
    from harness.report import plots

    png = tiny_png()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "render_all", lambda series: {stem: png for stem, *_ in plots.PLOTS})
        yield
