"""Whatever a fault journal holds, ``harness rollback`` answers with one line per record, a
refusal or a revert, and never a traceback, and never starts a process.

Two sources: arbitrary stack references handed to the stack registry as a journal would, and
whole journals of arbitrary lines (text, arbitrary JSON, and well-formed ``journaled`` lines whose
records mix real fault kinds, URLs on and off loopback and arbitrary stack references). ``exec``
records are left out: running the commands its own journal holds is what an ``exec`` revert is
for (README, "Faults you define"); what is fuzzed here is everything a record could point at.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.errors import BadInputError
from harness.faults import Journal, roll_back
from harness.faults.database import ThrottleDatabase
from harness.faults.journal import JOURNAL_FILE
from harness.faults.maintenance import MaintenanceMode
from harness.faults.registry import FAULT_ACTIONS
from harness.faults.stackref import stack_from_ref
from harness.faults.targets import check_record
from harness.faults.toxic import AddToxics, DisableProxy, ToxicSpec
from harness.safety import TargetPolicy

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

FUZZ = settings(
    max_examples=examples(150),  # a quarter of it outside CI (fuzz_budget.py)
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# A real directory that is not the journal's: what a crafted local reference points at.
ELSEWHERE = tempfile.gettempdir()
# Loopback on a port nothing listens on (refused at once), a host the policy refuses, junk.
URLS = ["http://127.0.0.1:9/x", "http://evil.example:8474", "http://evil.example\\@127.0.0.1:9/"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
urls = st.one_of(st.sampled_from(URLS), st.text(max_size=30), json_values)
# The journal's own directory is filled in by the test (its path is only known there).
OWN = "<own>"
state_dirs = st.one_of(st.sampled_from([OWN, ELSEWHERE, "/", "rel", ""]), json_values)
stack_refs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["local", "compose", "external", "none", "?"])},
        optional={
            "state_dir": state_dirs,
            "project": st.one_of(st.text(max_size=12), json_values),
            "compose_file": st.one_of(st.sampled_from(["/dev/null", ""]), json_values),
            "topology": json_values,
            "entry_url": urls,
            "toxiproxy_url": urls,
            "front_proxy": json_values,
        },
    ),
)
KINDS = [kind for kind in FAULT_ACTIONS if kind != "exec"]
LOOPBACK = "http://127.0.0.1:9"
_SLOW = (ToxicSpec("harness-slow", "latency", attributes=(("latency", 100),)),)
# Records as real faults write them, so the fuzz reaches the reverts, not only the field checks.
GENUINE: list[dict[str, Any]] = [
    AddToxics("slow", "app-db", _SLOW, LOOPBACK).to_record(),
    ThrottleDatabase("throttle", "app-db", _SLOW, LOOPBACK).to_record(),
    DisableProxy("cut", "lb-app-1", LOOPBACK).to_record(),
    MaintenanceMode("maint", (f"{LOOPBACK}/admin/maintenance",), "tok").to_record(),
    *(
        {"v": 1, "kind": kind, "name": kind, "target": "app-1", "healthz_url": f"{LOOPBACK}/h"}
        for kind in ("kill", "pause", "restart")
    ),
]
arbitrary_records = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1"]),
        "kind": st.one_of(st.sampled_from(KINDS), st.text(max_size=8)),
        "name": st.one_of(st.just("f"), st.text(max_size=16)),
        "stack": stack_refs,
    },
    optional={
        "target": st.one_of(st.sampled_from(["app-1", "lb-app-1", "app-db"]), json_values),
        "healthz_url": urls,
        "toxiproxy_url": urls,
        "admin_urls": st.lists(urls, max_size=2),
        "admin_token": st.text(max_size=8),
        "toxics": json_values,
        "toxic": json_values,
        "inject": json_values,
        "revert": json_values,
    },
)


@st.composite
def genuine_records(draw: st.DrawFn) -> dict[str, Any]:
    """A real record with an arbitrary stack reference, and maybe one field made arbitrary."""
    record = {**draw(st.sampled_from(GENUINE)), "stack": draw(stack_refs)}
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(record)))
        record[key] = draw(st.one_of(urls, json_values))
    return record


records = st.one_of(genuine_records(), arbitrary_records)


def _own(value: Any, journal_dir: Path) -> Any:
    if value == OWN:
        return str(journal_dir)
    if isinstance(value, dict):
        return {key: _own(item, journal_dir) for key, item in value.items()}
    return value


def _journaled(record: Any, number: int) -> str:
    line = {"v": 1, "op": "journaled", "id": f"id{number}", "name": "f", "t": 1.0}
    return json.dumps({**line, "record": record})


lines = st.one_of(
    records.map(lambda record: ("record", record)),
    st.text(max_size=40).map(lambda text: ("raw", text.replace("\n", " "))),
    json_values.map(lambda value: ("raw", json.dumps(value))),
    st.integers(1, 5).map(lambda depth: ("raw", "[" * 10**depth)),  # past any depth limit
)


@contextlib.contextmanager
def no_process_started() -> Iterator[list[tuple[Any, ...]]]:
    """Every attempt to start a process, refused and recorded (``subprocess`` is how every part
    of the harness starts one). A process started another way is caught by
    :func:`no_child_left`, once per test: listing the children reads all of /proc, which per
    example made these two tests a fifth of the unit tier's time."""
    attempts: list[tuple[Any, ...]] = []
    real = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("the fuzz test refuses to start a process")

    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        subprocess.Popen.__init__ = real  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    """This process's children before and after each test: none may be new (alive, or a zombie
    nobody waited for), however it was started."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    yield
    after = {child.pid for child in psutil.Process().children(recursive=True)}
    assert after - before == set(), f"the test left processes behind: {after - before}"


@FUZZ
@given(ref=stack_refs, required=st.booleans())
def test_any_stack_reference_is_a_stack_none_or_one_line_of_bad_input(
    ref: Any, required: bool
) -> None:
    with tempfile.TemporaryDirectory() as journal_dir, no_process_started() as started:
        error = ""
        try:
            stack_from_ref(
                _own(ref, Path(journal_dir)), required=required, journal_dir=Path(journal_dir)
            )
        except BadInputError as exc:
            error = str(exc)
    assert "\n" not in error
    assert started == []


@FUZZ
@given(entries=st.lists(lines, min_size=1, max_size=4))
def test_any_journal_is_rolled_back_or_refused_line_by_line(
    entries: list[tuple[str, Any]],
) -> None:
    with tempfile.TemporaryDirectory() as journal_dir, no_process_started() as started:
        state = Path(journal_dir)
        text = "".join(
            (_journaled(_own(value, state), n) if kind == "record" else value) + "\n"
            for n, (kind, value) in enumerate(entries)
        )
        path = state / JOURNAL_FILE
        path.write_text(text)
        os.chmod(path, 0o600)
        policy = TargetPolicy()
        said: list[str] = []
        result = roll_back(
            Journal(path),
            on_outcome=lambda outcome: said.append(outcome.line),
            check=lambda record: check_record(record, policy),
            attempts=1,
            sleep=lambda _: None,
        )
        for line in [*said, *result.problems, result.summary]:
            assert "\n" not in line
            assert "\r" not in line
        for outcome in result.outcomes:
            event("reverted" if outcome.reverted else outcome.error.split(":", 2)[-1][:40])
            assert outcome.reverted or outcome.error
            assert "Traceback" not in outcome.error
    assert started == []
