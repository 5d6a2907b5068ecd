"""The hooks of a run: where game day, capacity and the like attach to it, instead of being wired
into the Locust master. In the spirit of Locust's ``event.py``: each hook is a documented
attribute of :class:`MasterHooks`, listeners are added with :meth:`Hook.add_listener`.

::

    hook            fired, in the Locust master                         listeners get
    ──────────────  ──────────────────────────────────────────────────  ─────────────
    master_ready    once Locust's environment, the runner, the harness  MasterRun
                    plugin and the fault timeline exist, before Locust's
                    ``init`` and any load
    load_started    when the load's clock starts (``t0``, unix time),   LoadStarted
                    before the first user is asked for

The hooks fire in the master's process, so the code that listens has to be there: an
*extension* is a module the master imports by name (``RunRequest.extensions``, passed on its
command line) whose ``attach(hooks: MasterHooks) -> None`` adds its listeners. Game day
(``harness.gameday.session``) and the capacity search's early stop (``harness.capacity.
stepstop``) are extensions; the run layer never imports them. So is the live metrics endpoint
(``harness.run.live_metrics``, named by the pipeline for ``--metrics-port``).

A listener's error is not swallowed: it propagates to where the hook fired. A failing
``master_ready`` listener ends the run before any load (a ``HarnessError`` with its exit code,
anything else as a crash); a failing ``load_started`` one ends the run as crashed, its faults
reverted. An extension that cannot be loaded, or has no ``attach``, stops the master before it
starts (exit 3): a game day without its web UI must not pass for one.

Importing this module is cheap (no Locust): the types of the payloads are for the type checker.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from harness.errors import InfrastructureError
from harness.load.launch import MasterArgs
from harness.record import RunDir
from harness.scenario import Scenario
from harness.stack.base import Stack, StackInfo

if TYPE_CHECKING:
    from locust.env import Environment

    from harness.load.plugin import MasterPlugin
    from harness.load.timeline import Timeline

__all__ = ["Hook", "LoadStarted", "MasterHooks", "MasterRun", "load_extensions"]

E = TypeVar("E")


class Hook(Generic[E]):
    """One hook: listeners called in the order added, each with the hook's event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[[E], None]] = []

    def add_listener(self, listener: Callable[[E], None]) -> Callable[[E], None]:
        """Add ``listener``; returned, so this works as a decorator too."""
        self._listeners.append(listener)
        return listener

    def remove_listener(self, listener: Callable[[E], None]) -> None:
        self._listeners.remove(listener)

    def fire(self, event: E) -> None:
        """Call every listener with ``event``. The first that raises stops the firing: its
        error is the caller's, never swallowed."""
        for listener in list(self._listeners):
            listener(event)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._listeners)} listener(s)>"


@dataclass(frozen=True)
class MasterRun:
    """A run as its Locust master holds it, once everything is in place but the load."""

    environment: Environment
    """Locust's environment: its events, runner and web UI (``create_web_ui``)."""
    master: MasterPlugin
    """The harness's side of the run: phase plan and clock (``t0``), shipment listeners,
    ``stop_by`` / ``end_early`` / ``ending``, the guards that aborted it (``aborted_by``)."""
    scenario: Scenario
    timeline: Timeline
    """The fault timeline (``harness.faults.FaultTimeline`` when the scenario has faults)."""
    stack: Stack
    """The stack the faults act on."""
    info: StackInfo
    run_dir: RunDir
    args: MasterArgs
    """The master's command line: the game day's web UI address, the state directory, ..."""
    cleanup: contextlib.ExitStack
    """Closed once the run's faults are reverted and its end recorded: what a listener opens
    (a web UI, a control file) goes here."""


@dataclass(frozen=True)
class LoadStarted:
    """The load's clock has started: phase boundaries are ``t0`` plus the plan's times."""

    run: MasterRun
    t0: float


class MasterHooks:
    """The catalogue of the hooks fired in a run's Locust master. One per run."""

    master_ready: Hook[MasterRun]
    """Everything is in place but the load: attach to Locust (a web UI), to the harness
    plugin (its shipment listeners), to the fault timeline (a catalogue of faults by hand)."""

    load_started: Hook[LoadStarted]
    """The load's clock started at ``t0``: watch the phases as they play."""

    def __init__(self) -> None:
        self.master_ready = Hook("master_ready")
        self.load_started = Hook("load_started")


def load_extensions(names: Iterable[str]) -> MasterHooks:
    """The run's hooks with every extension in ``names`` attached, in order. An extension is a
    module with ``attach(hooks: MasterHooks) -> None``; one that cannot be imported, or has no
    ``attach``, is an ``InfrastructureError`` (a packaging mistake, never a silent skip)."""
    hooks = MasterHooks()
    for name in names:
        # Only the harness's own modules: the master's command line must not become a way to
        # import (run) any code on the machine.
        if not name.startswith("harness.") or not all(p.isidentifier() for p in name.split(".")):
            raise InfrastructureError(f"run extension {name!r}: not a module of the harness")
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise InfrastructureError(f"run extension {name!r} cannot be loaded: {exc}") from None
        attach = getattr(module, "attach", None)
        if not callable(attach):
            raise InfrastructureError(f"run extension {name!r} has no attach(hooks) function")
        attach(hooks)
    return hooks
