"""The fault journal: every fault is written down, durably, before it is injected.

A JSON-lines file, by default ``faults.jsonl`` in the stack's state directory, owner-only (records
may hold the shop's admin token). One line per step, each on disk (``fsync``) before the call that
wrote it returns::

    {"v":1,"op":"journaled","id":"9c0f…","name":"slow-db","t":1714.2,"pid":4242,"record":{…}}
    {"v":1,"op":"injected","id":"9c0f…","name":"slow-db","t":1714.3,"detail":{…}}
    {"v":1,"op":"error","id":"9c0f…","name":"slow-db","t":1730.3,"step":"revert","error":"…"}
    {"v":1,"op":"reverted","id":"9c0f…","name":"slow-db","t":1731.0,"detail":{…}}

``record`` is the fault's :meth:`~harness.faults.base.Fault.to_record`. A fault is *pending*
from its ``journaled`` line until its ``reverted`` line: whatever a crash interrupted, ``harness
rollback`` finds every fault that may still be in force, and reverting one that never was is a
no-op. A process killed in the middle of a write can only leave a torn *last* line, and only of a
step that had not returned yet (an inject is never started before its line is on disk), so a torn
last line is dropped; an unreadable line anywhere else is reported, never guessed at.

The journal and its lock are opened without following a symbolic link, and used only when they
are regular files of this user's with mode 0600 (:mod:`harness.private_files`): the records say
what a rollback reverts, so a file anyone else could have written, or a link to another file that
a torn-tail cut would shorten, is refused.

One writer at a time: :meth:`Journal.open` takes an exclusive lock (``faults.jsonl.lock``, which
the kernel releases when the writer dies), so ``harness rollback`` cannot fight a live run.

Each step is also handed to listeners as a :class:`FaultEvent` once it is on disk, so the run
store gets ``fault_journaled`` / ``fault_injected`` / ``fault_reverted`` / ``fault_error``
events (:func:`run_store_listener`). A listener that raises is logged and counted in
:attr:`Journal.listener_errors`; it never stops a step, since the journal, not the run store, is
what reverts depend on.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self

from harness.errors import HarnessError, InfrastructureError
from harness.faults.base import Fault, fault_summary
from harness.private_files import open_private
from harness.record import EventKind, EventSink
from harness.safety import loads_json

__all__ = [
    "JOURNAL_FILE",
    "FaultEvent",
    "Journal",
    "JournalContents",
    "JournalEntry",
    "Op",
    "PendingFault",
    "run_store_listener",
]

JOURNAL_FILE: Final = "faults.jsonl"
FORMAT: Final = 1

log = logging.getLogger(__name__)


class Op(enum.StrEnum):
    JOURNALED = "journaled"
    INJECTED = "injected"
    REVERTED = "reverted"
    ERROR = "error"


_EVENT_OF: Final = {
    Op.JOURNALED: EventKind.FAULT_JOURNALED,
    Op.INJECTED: EventKind.FAULT_INJECTED,
    Op.REVERTED: EventKind.FAULT_REVERTED,
    Op.ERROR: EventKind.FAULT_ERROR,
}


@dataclass(frozen=True)
class FaultEvent:
    """A step, as the run store records it: ``writer.event(kind, name, detail, t=t)``."""

    kind: EventKind
    name: str
    t: float  # unix seconds, when the step was written
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal."""

    line: int
    op: Op
    id: str
    name: str
    t: float
    record: Mapping[str, Any] | None = None  # journaled lines only
    step: str = ""  # error lines only: journal, inject, revert or rollback
    error: str = ""  # error lines only
    pid: int = 0  # journaled lines only: the process that was about to inject


@dataclass(frozen=True)
class PendingFault:
    """A fault journaled and not (yet) known to be reverted."""

    id: str
    name: str
    kind: str
    record: Mapping[str, Any]
    journaled_at: float
    line: int
    pid: int
    injected: bool  # its inject returned; False: it never ran, or was cut short, or raised
    errors: tuple[str, ...]


@dataclass(frozen=True)
class JournalContents:
    entries: tuple[JournalEntry, ...]
    problems: tuple[str, ...] = ()  # lines that could not be read, each saying which and why
    torn_tail: bool = False  # a last line cut short by a crash (dropped: see the module doc)

    def pending(self) -> list[PendingFault]:
        """Journaled and not reverted, in the order they were journaled."""
        journaled: dict[str, JournalEntry] = {}
        injected: set[str] = set()
        reverted: set[str] = set()
        errors: dict[str, list[str]] = {}
        for entry in self.entries:
            if entry.op is Op.JOURNALED:
                journaled.setdefault(entry.id, entry)
            elif entry.op is Op.INJECTED:
                injected.add(entry.id)
            elif entry.op is Op.REVERTED:
                reverted.add(entry.id)
            else:
                errors.setdefault(entry.id, []).append(f"{entry.step}: {entry.error}")
        return [
            PendingFault(
                id=entry.id,
                name=entry.name,
                kind=str((entry.record or {}).get("kind", "?")),
                record=entry.record or {},
                journaled_at=entry.t,
                line=entry.line,
                pid=entry.pid,
                injected=entry.id in injected,
                errors=tuple(errors.get(entry.id, ())),
            )
            for entry in journaled.values()
            if entry.id not in reverted
        ]


Listener = Callable[[FaultEvent], None]


def run_store_listener(writer: EventSink) -> Listener:
    """A listener that writes each step into a run store (a ``RunWriter``) as an event."""

    def record(event: FaultEvent) -> None:
        writer.event(event.kind, event.name, event.detail, t=event.t)

    return record


class Journal:
    """The journal at ``path``. Read it any time (:meth:`read`, :meth:`pending`); write it only
    between :meth:`open` and :meth:`close` (or in a ``with`` block). ``clock`` stamps the lines
    and events (unix seconds, as the run store keeps time)."""

    def __init__(
        self,
        path: Path | str,
        *,
        on_event: Listener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Absolute: the records are read back from other working directories.
        self.path = Path(path).absolute()
        self.clock = clock
        self.listener_errors: list[str] = []
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._lock_fd = -1
        self._fd = -1

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @classmethod
    def in_state_dir(cls, state_dir: Path | str, **kwargs: Any) -> Journal:
        return cls(Path(state_dir) / JOURNAL_FILE, **kwargs)

    @property
    def lock_file(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def previous_file(self) -> Path:
        """Where :meth:`clear` moves a journal whose every fault was reverted."""
        return self.path.with_name(self.path.name + ".previous")

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Hand each later step to ``listener`` too; returns what removes it again."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- the writer's lifetime -----------------------------------------------------------------

    def open(self) -> Self:
        """Become the journal's one writer. ``InfrastructureError`` when another process is."""
        if self._lock_fd >= 0:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Not through a link, and only a lock file of this user's (see harness.private_files).
            fd = open_private(self.lock_file, os.O_RDWR | os.O_CREAT, repair_mode=True)
        except OSError as exc:
            raise self._error("cannot open its lock", exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InfrastructureError(
                f"fault journal {self.path}: in use by process {holder} (a run still going?); "
                "let it end, or stop it, then try again"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._drop_torn_tail()
        except BaseException as exc:
            os.close(fd)  # releases the lock
            if isinstance(exc, OSError):
                raise self._error("cannot prepare it for writing", exc) from None
            raise
        self._lock_fd = fd
        return self

    def close(self) -> None:
        """Stop writing and release the lock (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- steps -----------------------------------------------------------------------------------

    def journaled(self, fault: Fault, **detail: Any) -> str:
        """Write the fault's record down (on disk when this returns); its entry id. Call it
        *before* ``inject``: if it raises, do not inject."""
        entry_id = uuid.uuid4().hex
        t = self._write(
            Op.JOURNALED, entry_id, fault.name, pid=os.getpid(), record=fault.to_record()
        )
        self._emit(Op.JOURNALED, fault.name, t, {"id": entry_id, **fault_summary(fault), **detail})
        return entry_id

    def injected(
        self, entry_id: str, fault: Fault, *, t: float | None = None, **detail: Any
    ) -> None:
        """The fault is in force; ``t``: since when (on :attr:`clock`; now when omitted), as
        the time the call returned, not the time this line could be written."""
        self._step(Op.INJECTED, entry_id, fault, detail, t)

    def reverted(
        self, entry_id: str, fault: Fault, *, t: float | None = None, **detail: Any
    ) -> None:
        """The fault is gone from the stack: it is no longer pending (``t`` as for injected)."""
        self._step(Op.REVERTED, entry_id, fault, detail, t)

    def failed(
        self,
        entry_id: str,
        name: str,
        step: str,
        error: str,
        fault: Fault | None = None,
        **detail: Any,
    ) -> None:
        """Record that ``step`` failed. Never raises: an error record must not become the error
        that stops a revert. When the line cannot be written the event still goes out."""
        about = fault_summary(fault) if fault is not None else {}
        try:
            t = self._write(Op.ERROR, entry_id, name, step=step, error=error, detail=detail)
        except HarnessError as exc:
            log.error(
                "fault %s: %s failed (%s), and journaling that failed too: %s",
                name,
                step,
                error,
                exc,
            )
            t, detail = self.clock(), {**detail, "journal_error": str(exc)}
        self._emit(
            Op.ERROR, name, t, {"id": entry_id, **about, "step": step, "error": error, **detail}
        )

    # --- reading ---------------------------------------------------------------------------------

    def read(self) -> JournalContents:
        """Every readable line, and what could not be read. An absent journal is an empty one."""
        try:
            fd = open_private(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return JournalContents(entries=())
        except OSError as exc:
            raise self._error("cannot read it", exc) from None
        with os.fdopen(fd, "rb") as journal:
            raw = journal.read()
        lines = raw.split(b"\n")
        torn_tail = lines.pop() != b""  # the piece after the last newline
        entries, problems = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entries.append(_parse(line, number))
            except ValueError as exc:
                problems.append(f"{self.path} line {number}: {exc}")
        return JournalContents(tuple(entries), tuple(problems), torn_tail)

    def pending(self) -> list[PendingFault]:
        return self.read().pending()

    def clear(self) -> None:
        """Set the journal aside (as :attr:`previous_file`) once nothing in it is pending; the
        next step starts a new one. Only the writer may."""
        self._require_open()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            if self.path.exists():
                os.replace(self.path, self.previous_file)
                _fsync_dir(self.path.parent)
        except OSError as exc:
            raise self._error("cannot set it aside", exc) from None

    # --- internals -------------------------------------------------------------------------------

    def _step(
        self, op: Op, entry_id: str, fault: Fault, detail: dict[str, Any], t: float | None
    ) -> None:
        t = self._write(op, entry_id, fault.name, t=t, detail=detail)
        self._emit(op, fault.name, t, {"id": entry_id, **fault_summary(fault), **detail})

    def _write(
        self, op: Op, entry_id: str, name: str, *, t: float | None = None, **fields: Any
    ) -> float:
        """Append one line and fsync it; the time it carries (``t``, else now)."""
        self._require_open()
        t = self.clock() if t is None else t
        line = {"v": FORMAT, "op": op.value, "id": entry_id, "name": name, "t": t}
        line |= {k: v for k, v in fields.items() if v not in (None, "", {})}
        try:
            data = (json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n").encode()
        except (TypeError, ValueError) as exc:
            raise InfrastructureError(f"fault journal {self.path}: not JSON: {exc}") from None
        try:
            if self._fd < 0:
                self._fd = self._open_for_append()
            size = os.fstat(self._fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError:
                # Half a line would glue itself to the next one: take it back.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, size)
                raise
        except OSError as exc:
            raise self._error(f"cannot write the {op.value} line of {name!r}", exc) from None
        return t

    def _open_for_append(self) -> int:
        created = not self.path.exists()
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        if created:  # the file's name must survive a crash too, not only its contents
            _fsync_dir(self.path.parent)
        return fd

    def _drop_torn_tail(self) -> None:
        """Cut a last line a crash left without its newline, before appending after it."""
        try:
            with os.fdopen(open_private(self.path, os.O_RDWR), "r+b") as journal:
                data = journal.read()
                if not data or data.endswith(b"\n"):
                    return
                journal.truncate(data.rfind(b"\n") + 1)
                journal.flush()
                os.fsync(journal.fileno())
        except FileNotFoundError:
            return
        log.warning("fault journal %s: dropped a last line cut short by a crash", self.path)

    def _emit(self, op: Op, name: str, t: float, detail: dict[str, Any]) -> None:
        event = FaultEvent(_EVENT_OF[op], name, t, MappingProxyType(detail))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                log.exception("fault journal listener failed on %s %s", event.kind, name)
                self.listener_errors.append(f"{event.kind} {name}: {type(exc).__name__}: {exc}")

    def _require_open(self) -> None:
        if self._lock_fd < 0:
            raise InfrastructureError(f"fault journal {self.path}: not open for writing")

    def _error(self, action: str, exc: OSError) -> InfrastructureError:
        return InfrastructureError(f"fault journal {self.path}: {action}: {exc.strerror or exc}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse(raw: bytes, number: int) -> JournalEntry:
    """One line, checked field by field; ValueError says what is wrong with it."""
    try:
        data = loads_json(raw)  # depth checked first: a deep line must not be a RecursionError
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {raw[:80]!r}")
    if data.get("v") != FORMAT:
        raise ValueError(f"format {data.get('v')!r}, this harness reads {FORMAT}")
    try:
        op = Op(str(data.get("op")))
    except ValueError:
        raise ValueError(f"unknown op {data.get('op')!r}") from None
    entry_id, name, t = data.get("id"), data.get("name"), data.get("t")
    if not isinstance(entry_id, str) or not isinstance(name, str):
        raise ValueError(f"{op} line without a string id and name: {raw[:120]!r}")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise ValueError(f"{op} line of {name!r} without a time")
    record = data.get("record")
    if op is Op.JOURNALED and not isinstance(record, dict):
        raise ValueError(f"journaled line of {name!r} without its record")
    pid = data.get("pid")
    return JournalEntry(
        line=number,
        op=op,
        id=entry_id,
        name=name,
        t=float(t),
        record=MappingProxyType(record) if isinstance(record, dict) else None,
        step=str(data.get("step", "")),
        error=str(data.get("error", "")),
        pid=pid if isinstance(pid, int) else 0,
    )
