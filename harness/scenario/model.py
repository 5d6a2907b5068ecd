"""The whole scenario: its sections assembled, the timeline they make, the resolved form the run
directory keeps, and the checks that need more than one section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Self

from pydantic import Field, model_validator

from harness.durations import format_duration
from harness.faults.lease import DEFAULT_LEASE_S, LeaseDuration
from harness.fields import FieldModel, Name, did_you_mean, invalid, show
from harness.safety import dsn_hosts, host_of, is_loopback
from harness.scenario.checks import Guard, NoData, PostCheck, Slo
from harness.scenario.faults import AnyFault
from harness.scenario.fields import FailedStatus, Hostname, unique
from harness.scenario.load import Capacity, Load, Phase
from harness.scenario.messages import validate
from harness.scenario.regression import Regression
from harness.scenario.stack import Stack, local_target_problem

__all__ = ["Scenario", "Window"]

# Timeline sums are floats (0.1 + 0.2 > 0.3); a nanosecond of slack keeps exact fits legal.
_SLACK = 1e-9


class Window(NamedTuple):
    """A named stretch of the run, in seconds from its start: ``start <= t < end``."""

    name: str
    start: float
    end: float


class Scenario(FieldModel):
    """A whole scenario file, validated. Times are seconds from the start of the run."""

    name: Name
    description: str | None = None
    stack: Stack = Field(default_factory=Stack)
    allow_targets: tuple[Hostname, ...] = ()
    load: Load
    faults: tuple[AnyFault, ...] = ()
    # How long toxics outlive the harness that stopped renewing them (harness.faults.lease).
    fault_lease: LeaseDuration = DEFAULT_LEASE_S
    slos: tuple[Slo, ...] = ()
    # An SLO with nothing to measure fails unless it (or this) says pass: a run with no requests
    # at all must not pass its gate.
    no_data: NoData = "fail"
    # Statuses that count as failed besides no response and 5xx (harness.record.outcome): a 4xx
    # is an honest answer unless the scenario says its clients must never see it.
    failed_statuses: tuple[FailedStatus, ...] = ()
    guards: tuple[Guard, ...] = ()
    capacity: Capacity | None = None
    checks: tuple[PostCheck, ...] = ()
    # How much worse than a baseline run is a regression (harness compare, run --baseline).
    regression: Regression | None = None

    # --- the timeline -------------------------------------------------------------------------

    @property
    def total_duration(self) -> float:
        """Seconds from the start of the first phase to the end of the last."""
        return sum(phase.duration for phase in self.load.phases)

    def phase_windows(self) -> list[Window]:
        """Each phase with its start and end, back to back from 0."""
        windows = []
        start = 0.0
        for phase in self.load.phases:
            windows.append(Window(phase.name, start, start + phase.duration))
            start += phase.duration
        return windows

    def phase_at(self, t: float) -> Phase | None:
        """The phase running at ``t`` seconds; a boundary belongs to the phase it starts. None
        before 0 and from :attr:`total_duration` on (the run is over)."""
        for phase, window in zip(self.load.phases, self.phase_windows(), strict=True):
            if window.start <= t < window.end:
                return phase
        return None

    def fault_windows(self) -> list[Window]:
        """Each fault with the stretch it is in force."""
        total = self.total_duration
        return [Window(fault.name, *fault.window(total)) for fault in self.faults]

    # --- the resolved form --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: durations in seconds, paths absolute, every default spelled out."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Read back :meth:`to_dict` (a run directory's scenario). Raises :class:`BadInputError`."""
        return validate(cls, data, source="resolved scenario", context={"resolved": True})

    # --- checks that need more than one field ---------------------------------------------------

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unique([f.name for f in self.faults], "faults", "name", "fault")
        unique([s.name for s in self.slos], "slos", "name", "SLO")
        unique([g.name for g in self.guards], "guards", "name", "guard")
        unique([c.name for c in self.checks], "checks", "name", "check")
        for index, check in enumerate(self.checks):
            if check.sql is not None and check.dsn is None and self.stack.kind == "external":
                raise invalid(
                    "required for an sql check on an external stack", "checks", index, "dsn"
                )
        self._faults_fit_the_run()
        self._faults_fit_the_stack()
        self._hosts_allowed()
        self._capacity_faults_known()
        return self

    def _capacity_faults_known(self) -> None:
        if self.capacity is None:
            return
        known = [fault.name for fault in self.faults]
        for field in ("faults", "always"):
            for index, name in enumerate(getattr(self.capacity, field)):
                if name not in known:
                    hint = did_you_mean(name, known) or f"known: {', '.join(known) or 'none'}"
                    raise invalid(f"unknown fault {show(name)} ({hint})", "capacity", field, index)

    def _faults_fit_the_run(self) -> None:
        total = self.total_duration
        end_of_run = format_duration(total)
        for index, fault in enumerate(self.faults):
            if fault.at is None:
                continue  # a catalogue entry: injected by hand, whenever and for as long
            if fault.at >= total - _SLACK:
                raise invalid(
                    f'fault "{fault.name}" starts at {format_duration(fault.at)}, '
                    f"but the phases end at {end_of_run}",
                    "faults",
                    index,
                    "at",
                )
            if fault.for_ is not None and fault.at + fault.for_ > total + _SLACK:
                raise invalid(
                    f'fault "{fault.name}" runs from {format_duration(fault.at)} for '
                    f"{format_duration(fault.for_)}, to {format_duration(fault.at + fault.for_)}, "
                    f"past the end of the phases at {end_of_run}",
                    "faults",
                    index,
                    "for",
                )

    def _faults_fit_the_stack(self) -> None:
        # What each fault needs of the stack its family declares (FaultModel's class variables).
        kind = self.stack.kind
        for index, fault in enumerate(self.faults):
            if kind == "external" and fault.needs_managed_stack:
                raise invalid(
                    f"{fault.action} needs a stack the harness runs (local or compose), "
                    "not external",
                    "faults",
                    index,
                    "action",
                )
            if (
                kind == "external"
                and fault.needs_toxiproxy
                and self.stack.toxiproxy_url is None
                and not self.stack.front_proxy
            ):
                raise invalid(
                    f'required for kind external: fault "{fault.name}" ({fault.action}) '
                    "goes through Toxiproxy (or set stack.front_proxy: true)",
                    "stack",
                    "toxiproxy_url",
                )
            if kind == "local" and fault.target is not None:
                problem = local_target_problem(fault.target_kind, fault.action, fault.target)
                if problem:
                    raise invalid(problem, "faults", index, "target")

    def _hosts_allowed(self) -> None:
        allowed = set(self.allow_targets)
        for field in ("entry_url", "toxiproxy_url"):
            url = getattr(self.stack, field)
            host = host_of(url) if url else ""
            if host and not is_loopback(host) and host not in allowed:
                raise invalid(
                    f'host "{host}" is not loopback; add it to allow_targets (or --allow-target '
                    f"{host}) if the harness may send load and faults there",
                    "stack",
                    field,
                )
        for index, check in enumerate(self.checks):
            # A ${VAR} is known only when the check runs; a literal host is checked now.
            if check.dsn is None or "${" in check.dsn:
                continue
            for host in dsn_hosts(check.dsn):
                if not is_loopback(host) and host.lower() not in allowed:
                    raise invalid(
                        f'host "{host}" is not loopback; add it to allow_targets (or '
                        f"--allow-target {host}) if the harness may query it",
                        "checks",
                        index,
                        "dsn",
                    )
        for index, fault in enumerate(self.faults):
            # A fault that calls URLs of the user's (the http family) names them literally.
            urls = getattr(fault, "urls", None)
            if not callable(urls):
                continue
            for step, url in zip(("inject", "revert"), urls(), strict=False):
                host = host_of(url)
                if host and not is_loopback(host) and host not in allowed:
                    raise invalid(
                        f'host "{host}" is not loopback; add it to allow_targets (or '
                        f"--allow-target {host}) if the harness may call it",
                        "faults",
                        index,
                        step,
                        "url",
                    )
