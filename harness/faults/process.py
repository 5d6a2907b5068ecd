"""Instance faults: kill, pause or restart one shop instance through the stack's primitives.

Each revert first asks the stack what state the instance is in, and acts only on the state its
own fault leaves behind. That makes it idempotent, and keeps overlapping faults apart: the end of
a pause does not restart an instance another fault killed, and undoing a kill does not disturb an
instance that runs again already. A stack that is gone entirely (``harness down`` ran after a
crash) has nothing left to revert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Self

from harness.errors import StackError
from harness.faults.base import RECORD_VERSION, Fault, record_str
from harness.faults.http import wait_for_status
from harness.faults.model import FaultModel, TargetKind
from harness.faults.stackref import instance_state, require_stack, stack_ref
from harness.fields import Name
from harness.stack import ProcessState, Stack, StackInfo

__all__ = [
    "InstanceFault",
    "KillInstance",
    "PauseInstance",
    "RestartInstance",
    "build_instance_fault",
]

# How long a restarted instance may take to answer /healthz (a cold Python start, under load).
HEALTHY_TIMEOUT_S: Final = 30.0
PROBE_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True)
class _InstanceFault:
    name: str
    target: str
    stack: Stack
    # /healthz of the instance itself, not through the load balancer.
    healthz_url: str

    kind: ClassVar[str]
    self_healing: ClassVar[bool] = False

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "healthz_url": self.healthz_url,
            "stack": stack_ref(self.stack),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        return cls(
            name=record_str(record, "name"),
            target=record_str(record, "target"),
            stack=require_stack(record, stack),  # found by fault_from_record
            healthz_url=record_str(record, "healthz_url"),
        )

    def _start_again_if_dead(self) -> None:
        """Undo a death: restart the instance if (and only if) it is dead, then wait for it."""
        if instance_state(self.stack, self.target) is not ProcessState.DEAD:
            return
        self.stack.restart(self.target)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        # LocalStack.restart waits for /healthz itself; another backend may not, and a revert
        # that returns before the instance answers would start the recovery clock too early.
        if not wait_for_status(
            self.healthz_url, 200, timeout_s=HEALTHY_TIMEOUT_S, probe_timeout_s=PROBE_TIMEOUT_S
        ):
            raise StackError(
                f"{self.target} was restarted but {self.healthz_url} did not answer 200 "
                f"within {HEALTHY_TIMEOUT_S:.0f}s"
            )


@dataclass(frozen=True)
class KillInstance(_InstanceFault):
    """SIGKILL the instance; revert starts it again and waits until it answers /healthz."""

    kind: ClassVar[str] = "kill"

    def describe(self) -> str:
        return f"kill {self.target} (SIGKILL)"

    def inject(self) -> None:
        self.stack.kill(self.target)

    def revert(self) -> None:
        self._start_again_if_dead()


@dataclass(frozen=True)
class PauseInstance(_InstanceFault):
    """SIGSTOP the instance; revert resumes it if it is still paused."""

    kind: ClassVar[str] = "pause"

    def describe(self) -> str:
        return f"pause {self.target} (SIGSTOP)"

    def inject(self) -> None:
        self.stack.pause(self.target)

    def revert(self) -> None:
        # Dead (another fault, or a crash) is not this fault's doing: leave it to whoever did it.
        if instance_state(self.stack, self.target) is ProcessState.PAUSED:
            self.stack.resume(self.target)


@dataclass(frozen=True)
class RestartInstance(_InstanceFault):
    """Stop and start the instance. Self-healing: once inject returned there is nothing to
    revert; revert only starts an instance an interrupted restart left dead."""

    kind: ClassVar[str] = "restart"
    self_healing: ClassVar[bool] = True

    def describe(self) -> str:
        return f"restart {self.target}"

    def inject(self) -> None:
        self.stack.restart(self.target)
        self._wait_healthy()

    def revert(self) -> None:
        self._start_again_if_dead()


# --- the scenario's side: the model of a fault entry, and the fault it builds on a stack -------


class InstanceFault(FaultModel):
    """``kill`` (SIGKILL; the stack may restart it), ``pause`` (SIGSTOP/SIGCONT) or ``restart``
    one shop instance, ``app-<n>``."""

    target_kind: ClassVar[TargetKind | None] = "instance"
    needs_managed_stack: ClassVar[bool] = True

    action: Literal["kill", "pause", "restart"]
    target: Name


_INJECTORS: dict[str, type[KillInstance | PauseInstance | RestartInstance]] = {
    "kill": KillInstance,
    "pause": PauseInstance,
    "restart": RestartInstance,
}


def build_instance_fault(spec: InstanceFault, stack: Stack, info: StackInfo) -> Fault:
    """The instance fault ``spec`` describes, on ``stack`` (``BadInputError`` for an instance
    ``info`` does not list)."""
    instance = info.instance(spec.target)
    return _INJECTORS[spec.action](
        name=spec.name,
        target=spec.target,
        stack=stack,
        healthz_url=instance.endpoint.url(instance.health_path),
    )
