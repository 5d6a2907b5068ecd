"""The plots: PNGs that decode, drawn without pyplot's global state, for any run, empty or not."""

from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Drawn:
    """The synthetic run's plots, and matplotlib's global state around the drawing."""

    series: Series
    plots: dict[str, bytes]
    backend: tuple[str, str]  # before, after, as set (not resolved)
    pyplot_loaded: tuple[bool, bool]  # before, after


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Drawn:
    """Drawn once for the tests that read the plots or the state around them."""
    series = series_of(build_run(tmp_path_factory.mktemp("plots")))
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    backend = _backend_as_set()
    plots = render_all(series)
    return Drawn(
        series,
        plots,
        (backend, _backend_as_set()),
        (pyplot_loaded, "matplotlib.pyplot" in sys.modules),
    )


def _backend_as_set() -> str:
    # Not matplotlib.get_backend(): resolving a backend left to be chosen automatically imports
    # pyplot, the very import the test below must see the plots not make.
    return str(dict.__getitem__(matplotlib.rcParams, "backend"))


def test_every_plot_of_the_synthetic_run_is_a_png_that_decodes(synthetic: Drawn) -> None:
    plots = synthetic.plots
    assert list(plots) == ["requests", "latency", "ratios"]
    for data in plots.values():
        assert_decodes(data)


def test_plots_leave_no_global_matplotlib_state_behind(synthetic: Drawn) -> None:
    before, after = synthetic.backend
    assert after == before
    loaded_before, loaded_after = synthetic.pyplot_loaded
    if not loaded_before:  # another test may have imported it; we must not
        assert not loaded_after


def test_the_same_series_draws_the_same_bytes(synthetic: Drawn) -> None:
    # drawn again, maybe many tests after the first time
    assert render_all(synthetic.series) == synthetic.plots


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
