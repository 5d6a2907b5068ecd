"""The plots: PNGs that decode, drawn without pyplot's global state, for any run, empty or not."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from harness.report.plots import DPI, HEIGHT_IN, RATIOS_HEIGHT_IN, WIDTH_IN, render_all
from harness.report.series import FaultSpan, PhaseSpan, RecoveryMarker, Series, build_series

from .test_report_series import series_of
from .test_report_synthetic import CREATED, build_run

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must start with."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_decodes(data: bytes) -> None:
    # The ratios plot is taller: retry amplification has a panel of its own below the 503s.
    # A legend of many entries takes more rows, and the figure grows to keep the axes' size.
    width, height = png_size(data)
    assert width == round(WIDTH_IN * DPI)
    assert round(HEIGHT_IN * DPI) <= height <= round((RATIOS_HEIGHT_IN + 1) * DPI)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # reads every chunk and checks the CRCs


def test_every_plot_of_the_synthetic_run_is_a_png_that_decodes(tmp_path: Path) -> None:
    plots = render_all(series_of(build_run(tmp_path)))
    assert list(plots) == ["requests", "latency", "ratios"]
    for data in plots.values():
        assert_decodes(data)


def test_plots_leave_no_global_matplotlib_state_behind(tmp_path: Path) -> None:
    series = series_of(build_run(tmp_path))
    backend = matplotlib.get_backend()
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    render_all(series)
    assert matplotlib.get_backend() == backend
    if not pyplot_loaded:  # another test may have imported it; we must not
        assert "matplotlib.pyplot" not in sys.modules


def test_the_same_series_draws_the_same_bytes(tmp_path: Path) -> None:
    series = series_of(build_run(tmp_path))
    assert render_all(series) == render_all(series)


def test_an_empty_run_still_draws_three_plots() -> None:
    series = build_series([], [], started_at=CREATED, ended_at=None)
    for data in render_all(series).values():
        assert_decodes(data)


def test_a_run_that_crashed_mid_fault_draws_its_unreverted_band(tmp_path: Path) -> None:
    series = series_of(build_run(tmp_path, upto=14.5, finish=None, revert=False))
    assert series.faults[0].reverted is False
    for data in render_all(series).values():
        assert_decodes(data)


def test_odd_marks_do_not_break_a_plot() -> None:
    """A zero-length fault, overlapping faults, a marker past the end, names matplotlib would
    read as mathtext, and latency that is NaN everywhere."""
    n = 5
    nan = float("nan")
    series = Series(
        origin=0.0,
        step=1.0,
        end=5.0,
        x=tuple(float(i) for i in range(n)),
        rps_by_class={
            c: (1.0,) * n if c == "2xx" else (0.0,) * n
            for c in ("2xx", "3xx", "4xx", "503", "5xx", "error")
        },
        rps=(1.0,) * n,
        p50_ms=(nan,) * n,
        p95_ms=(nan,) * n,
        p99_ms=(nan,) * n,
        ratio_503=(0.0,) * n,
        retry_amplification=(nan,) * n,
        phases=(PhaseSpan("$x$", 0.0, 5.0, None, ended=True),),
        faults=(
            FaultSpan("a$b", 1.0, 1.0, reverted=True),
            FaultSpan("c", 0.5, 4.0, reverted=False),
            FaultSpan("d", 0.7, 3.0, reverted=True),
        ),
        recoveries=(RecoveryMarker("c", 9.0, False, "c never recovered $"),),
    )
    for data in render_all(series).values():
        assert_decodes(data)
