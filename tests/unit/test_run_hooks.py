"""The run's hooks and extensions: listeners called in order, their errors never swallowed, an
extension that cannot be loaded stopping the master, and each caller attaching the extensions its
run needs (a game day its web UI, a staircase its early stop) without the run layer naming them."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from harness.capacity import STEP_STOP_EXTENSION, extensions_for
from harness.errors import InfrastructureError
from harness.gameday.runner import GAMEDAY_EXTENSION, run_gameday
from harness.run.hooks import Hook, MasterHooks, load_extensions
from harness.run.request import RunRequest, ScenarioOverrides
from harness.scenario import parse_scenario

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.


def test_listeners_hear_the_event_in_the_order_they_were_added() -> None:
    hook: Hook[int] = Hook("ready")
    heard: list[tuple[str, int]] = []
    hook.add_listener(lambda n: heard.append(("first", n)))

    @hook.add_listener
    def second(n: int) -> None:
        heard.append(("second", n))

    hook.fire(7)
    hook.remove_listener(second)
    hook.fire(8)
    assert heard == [("first", 7), ("second", 7), ("first", 8)]


def test_a_listener_that_fails_stops_the_firing_and_its_error_reaches_the_caller() -> None:
    hook: Hook[None] = Hook("ready")
    heard: list[str] = []

    def broken(_: None) -> None:
        raise RuntimeError("bug in an extension")

    hook.add_listener(broken)
    hook.add_listener(lambda _: heard.append("after"))
    with pytest.raises(RuntimeError, match="bug in an extension"):
        hook.fire(None)
    assert heard == []


def test_an_extension_attaches_to_the_hooks_by_its_module_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extension = types.ModuleType("harness.fake_extension")
    heard: list[object] = []
    extension.attach = lambda hooks: hooks.master_ready.add_listener(heard.append)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "harness.fake_extension", extension)
    hooks = load_extensions(["harness.fake_extension"])
    assert isinstance(hooks, MasterHooks)
    hooks.master_ready.fire("ready")  # type: ignore[arg-type]  # any event will do here
    assert heard == ["ready"]


def test_an_extension_that_cannot_be_loaded_is_an_infrastructure_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InfrastructureError, match=r"'harness\.no_such' cannot be loaded"):
        load_extensions(["harness.no_such"])
    monkeypatch.setitem(sys.modules, "harness.no_attach", types.ModuleType("harness.no_attach"))
    with pytest.raises(InfrastructureError, match=r"'harness.no_attach' has no attach\(hooks\)"):
        load_extensions(["harness.no_attach"])


@pytest.mark.parametrize("name", ["os", "my_extension", "harness.", "harness.x;y", "harnessx.y"])
def test_only_the_harnesss_own_modules_can_be_extensions(name: str) -> None:
    with pytest.raises(InfrastructureError, match="not a module of the harness"):
        load_extensions([name])


SCENARIO = """\
name: s
load:
  locustfile: lf.py
  model: open
  phases: [{name: a, duration: 1s, rate: 1/s}]
"""


def test_a_staircase_asks_for_the_early_stop_and_other_scenarios_for_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "lf.py").write_text("")
    plain = parse_scenario(SCENARIO, tmp_path / "s.yaml")
    stair = parse_scenario(SCENARIO + "capacity: {stop_at_break: true}\n", tmp_path / "s.yaml")
    assert extensions_for(plain) == ()
    assert extensions_for(stair) == (STEP_STOP_EXTENSION,)


def test_a_game_day_is_a_run_with_the_game_day_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(
        "harness.gameday.runner.run_file",
        lambda path, request, overrides, **_: calls.append((path, request, overrides)),
    )
    overrides = ScenarioOverrides(workers=2)
    run_gameday(Path("g.yaml"), RunRequest(web_host="127.0.0.1"), overrides)
    run_gameday(Path("g.yaml"), RunRequest(web_host="127.0.0.1", extensions=(GAMEDAY_EXTENSION,)))
    assert [call[1].extensions for call in calls] == [(GAMEDAY_EXTENSION,)] * 2
    assert calls[0][2] is overrides


@pytest.mark.integration  # a Python process
def test_the_extension_modules_are_importable_and_attach() -> None:
    # In a process of its own, Locust first, as the master imports them: importing Locust here
    # would monkey-patch the test process with gevent.
    code = (
        "import locust\n"
        "from harness.run.hooks import load_extensions\n"
        f"hooks = load_extensions([{GAMEDAY_EXTENSION!r}, {STEP_STOP_EXTENSION!r}])\n"
        "print(repr(hooks.master_ready), repr(hooks.load_started))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split(">")[:2] == [
        "<Hook master_ready: 1 listener(s)",
        " <Hook load_started: 1 listener(s)",
    ]
