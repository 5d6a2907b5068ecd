"""``exec``: a fault the user defines as two commands, one that hurts and one that heals
(``systemctl stop``/``start``, ``kubectl scale``, ``docker kill``/``start`` on a host they own).

Never a shell: each command is an argument list run as it is (no shell in between), with no input
(stdin is ``/dev/null``), its output captured and a timeout, after which its whole process group
is killed. ``${NAME}`` in an argument is replaced by the environment variable when the command
runs, so a secret stays in the environment; the journal record keeps the arguments as written.
A command that exits non-zero is an ``InfrastructureError`` ending with its last lines of output.

Revert runs the revert command every time it is called, also when the inject never ran (the
journal is written first) or already was reverted: the command must be safe to run again, as
``systemctl start`` or ``kubectl scale --replicas 3`` are.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import BeforeValidator, model_validator

from harness.errors import BadInputError, InfrastructureError
from harness.faults.base import RECORD_VERSION, Fault, record_str
from harness.faults.envref import check_references, expand, mask, references
from harness.faults.model import FaultModel
from harness.fields import PositiveDuration, invalid, show
from harness.stack import Stack, StackInfo

__all__ = ["DEFAULT_TIMEOUT_S", "ExecFault", "RunCommands", "build_exec_fault"]

DEFAULT_TIMEOUT_S: Final = 30.0
# What an error message keeps of a command's output: its last lines, and not too much of them.
_TAIL_LINES: Final = 5
_TAIL_CHARS: Final = 600
# After the kill at the timeout: how long to wait for the pipes to close.
_DRAIN_S: Final = 2.0


@dataclass(frozen=True)
class RunCommands:
    """Run ``inject_argv`` to inject and ``revert_argv`` to revert; each within ``timeout_s``."""

    name: str
    inject_argv: tuple[str, ...]
    revert_argv: tuple[str, ...]
    timeout_s: float = DEFAULT_TIMEOUT_S

    kind: ClassVar[str] = "exec"
    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> None:
        return None

    def describe(self) -> str:
        return f"run `{_shown(self.inject_argv)}` (revert: `{_shown(self.revert_argv)}`)"

    def inject(self) -> None:
        self._run("inject", self.inject_argv)

    def revert(self) -> None:
        self._run("revert", self.revert_argv)

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": None,
            # As the scenario wrote them: ${NAME} is expanded only when a command runs.
            "inject": list(self.inject_argv),
            "revert": list(self.revert_argv),
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        name = record_str(record, "name")
        timeout = record.get("timeout_s")
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise BadInputError(
                f"fault record {name!r} (exec): timeout_s: expected seconds > 0, got {timeout!r}"
            )
        return cls(
            name=name,
            inject_argv=_record_argv(record, "inject"),
            revert_argv=_record_argv(record, "revert"),
            timeout_s=float(timeout),
        )

    def _run(self, step: str, template: tuple[str, ...]) -> None:
        what = f'fault "{self.name}": {step}'
        argv = [expand(arg, f"{what}[{index}]") for index, arg in enumerate(template)]
        command = _shown(template)  # as written: an expanded argument may be a secret
        try:
            process = subprocess.Popen(  # an argument list: no shell ever sees it
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own process group, so a timeout kills what it started too.
                start_new_session=True,
            )
        except OSError as exc:
            raise InfrastructureError(
                f"{what}: cannot run `{command}`: {exc.strerror or exc}"
            ) from None
        try:
            output, _ = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            output = _kill(process)
            raise InfrastructureError(
                f"{what}: `{command}` did not finish within {self.timeout_s:g}s and was "
                f"killed{_tail(output, template)}"
            ) from None
        except BaseException:
            _kill(process)  # interrupted: leave nothing running behind us
            raise
        if process.returncode != 0:
            raise InfrastructureError(
                f"{what}: `{command}` {_exit_text(process.returncode)}{_tail(output, template)}"
            )


def _kill(process: subprocess.Popen[bytes]) -> bytes:
    """Kill the command's process group; what it wrote until then."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    try:
        output, _ = process.communicate(timeout=_DRAIN_S)
    except subprocess.TimeoutExpired:
        # A child that left the group still holds the pipe: stop reading, do not hang.
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait(timeout=_DRAIN_S)
        return b""
    return output or b""


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with {returncode}"


def _tail(output: bytes, template: tuple[str, ...]) -> str:
    """``: <last lines>`` of the output on one line, secrets masked; empty without output."""
    text = output.decode("utf-8", "replace")
    names = [name for arg in template for name in references(arg)]
    lines = [line.strip() for line in mask(text, names).splitlines() if line.strip()]
    tail = " | ".join(lines[-_TAIL_LINES:])
    if len(tail) > _TAIL_CHARS:
        tail = "..." + tail[-_TAIL_CHARS:]
    return f": {tail}" if tail else " (no output)"


def _shown(argv: tuple[str, ...]) -> str:
    text = shlex.join(argv)
    return text if len(text) <= 200 else text[:197] + "..."


def _record_argv(record: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = record.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and "\0" not in item for item in value)
        or not value[0]
    ):
        raise BadInputError(
            f"fault record {record.get('name')!r} (exec): {key}: expected a list of "
            f"arguments, got {value!r}"
        )
    return tuple(value)


# --- the scenario's side: the model of an exec entry, and the fault it builds ------------------


def _argv(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise invalid(
            f"expected a list of arguments like [systemctl, stop, web], got {show(value)}: "
            "no shell splits a string here"
        )
    if not isinstance(value, list | tuple) or not value:
        got = "an empty list" if isinstance(value, list | tuple) else show(value)
        raise invalid(f"expected a list of arguments like [systemctl, stop, web], got {got}")
    argv = []
    for index, item in enumerate(value):
        # [kubectl, scale, --replicas, 0]: YAML reads the 0 as a number; it is one argument.
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise invalid(f'expected a string (quote it: "..."), got {show(item)}', index)
        if "\0" in item:
            raise invalid("an argument cannot hold a NUL character", index)
        argv.append(check_references(item, index))
    if not argv[0].strip():
        raise invalid("expected the program to run, got an empty string", 0)
    return tuple(argv)


# Before, not plain: a plain validator of a tuple makes pydantic warn when it dumps a list.
Argv = Annotated[tuple[str, ...], BeforeValidator(_argv)]


class ExecFault(FaultModel):
    """``exec``: run ``inject`` (an argument list) to inject, ``revert`` to revert."""

    action: Literal["exec"]
    target: None = None
    inject: Argv
    revert: Argv
    timeout: PositiveDuration = DEFAULT_TIMEOUT_S

    @model_validator(mode="before")
    @classmethod
    def _no_target(cls, data: object) -> object:
        if isinstance(data, Mapping) and data.get("target") is not None:
            raise invalid("exec takes no target: its commands say what they act on", "target")
        return data

    def env_references(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (f"{step}[{index}]", name)
            for step, argv in (("inject", self.inject), ("revert", self.revert))
            for index, arg in enumerate(argv)
            for name in references(arg)
        )


def build_exec_fault(spec: ExecFault, stack: Stack, info: StackInfo) -> Fault:
    """The commands ``spec`` describes; they need nothing of the stack."""
    return RunCommands(spec.name, spec.inject, spec.revert, spec.timeout)
