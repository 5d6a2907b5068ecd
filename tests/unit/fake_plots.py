"""Reports written without drawing their plots, for tests whose subject is not the plots.

Drawing the three plots costs over half a second of matplotlib layout however small the run,
and a module about exit codes, notes or summary.json writes dozens of reports. Within
:func:`plots_not_drawn` every report embeds a 1-pixel PNG per plot instead, and for its trends
when it has any: the same keys and a real PNG, so the page is whole. test_report_plots.py and
test_report_html.py draw the plots for real, the latter through the same ``write_reports``; the
trends are drawn for real in test_report_trends.py.

The ``plots_not_drawn`` fixture (tests/unit/conftest.py) wraps one test; a module-scoped fixture
that writes a report uses the context manager itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.report.data import RunReport


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
    from harness.report import plots, trends

    png = tiny_png()

    def trends_png(report: RunReport, n: int = trends.TREND_RUNS) -> bytes | None:
        return png if len(trends.trend_points(report, n)) >= 2 else None  # None as the real one

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "render_all", lambda series: {stem: png for stem, *_ in plots.PLOTS})
        patch.setattr(trends, "trends_png", trends_png)
        yield
