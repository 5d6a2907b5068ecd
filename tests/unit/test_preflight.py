"""Everything checkable before anything starts is checked before anything starts: `harness run`
and `harness validate` refuse a bad scenario with one line naming the file, field and value, and
exit 2 (a taken port: one line naming it and its flag, exit 3), with no run directory made and no
stack state written. The locustfile is imported in a subprocess (a real Locust import), never in
this process."""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.entry import main
from harness.errors import BadInputError
from harness.run import preflight as preflight_module
from harness.run.preflight import preflight, resolve_scenario
from harness.run.request import RunRequest
from harness.stack.base import DeclaredParts
from harness.stack.ports import StackPorts

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

LOCUSTFILE = """\
from locust import HttpUser, task


class ShopUser(HttpUser):
    @task
    def browse(self):
        self.client.get("/products")
"""

BASE = """\
name: s
load:
  locustfile: {locustfile}
  {user_classes}
  phases: [{{name: a, duration: 1s, users: 1, spawn_rate: 1}}]
"""


def write(tmp_path: Path, extra: str = "", *, lf: str = LOCUSTFILE, classes: str = "") -> Path:
    (tmp_path / "lf.py").write_text(lf)
    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(locustfile="lf.py", user_classes=classes) + textwrap.dedent(extra))
    return path


def harness(tmp_path: Path, *args: str) -> list[str]:
    """The command run in this process (the locustfile still imports in a subprocess), with a
    state and a reports directory of its own."""
    return [
        *args[:1],
        "--state-dir",
        str(tmp_path / "state"),
        "--reports",
        str(tmp_path / "rep"),
        *args[1:],
    ]


@pytest.fixture
def nothing_started(tmp_path: Path) -> Iterator[None]:
    """After the test: no run directory, no stack state (not even the state directory)."""
    yield
    assert not (tmp_path / "rep").exists()
    assert not (tmp_path / "state").exists()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err, err
    return err


CASES = {
    "unknown instance": (
        "faults: [{name: k, action: kill, target: app-9, at: 0s, for: 1s}]\n",
        "",
        LOCUSTFILE,
        "harness: {path}: faults[0].target: no instance 'app-9' in the stack "
        "(it has app-1, app-2, app-3)",
    ),
    "unknown user class": (
        "",
        "user_classes: [ShopUsr]",
        LOCUSTFILE,
        "harness: {path}: load.user_classes[0]: no User class 'ShopUsr' in {lf} (it has ShopUser)",
    ),
    "locustfile that does not import": (
        "",
        "",
        "import no_such_module_h5\n",
        "harness: {path}: load.locustfile: {lf}: importing it failed: ModuleNotFoundError: "
        "No module named 'no_such_module_h5'",
    ),
    "locustfile that exits at import": (
        "",
        "",
        "raise SystemExit(7)\n",
        "harness: {path}: load.locustfile: {lf}: importing it failed: SystemExit: 7",
    ),
    "locustfile without users": (
        "",
        "",
        "X = 1\n",
        "harness: {path}: load.locustfile: {lf} defines no Locust User class to run",
    ),
    "SLO naming no fault": (
        "slos: [{name: r, expr: 'recovery_time(nope) < 5s'}]\n",
        "",
        LOCUSTFILE,
        "harness: {path}: slos[0]",
    ),
    "entry URL not allowed": (
        "stack: {kind: external, entry_url: 'http://192.0.2.7:8080'}\n",
        "",
        LOCUSTFILE,
        'harness: {path}: stack.entry_url: host "192.0.2.7" is not loopback',
    ),
}


# The mistakes found only by importing the locustfile, which the preflight does in a process.
PROBED = ("locustfile that does not import", "locustfile that exits at import")
PROBED += ("locustfile without users", "unknown user class")


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.integration) if c in PROBED else c for c in sorted(CASES)],
)
def test_a_mistake_is_one_line_exit_2_and_nothing_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nothing_started: None,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    case: str,
) -> None:
    monkeypatch.delenv("HARNESS_ALLOW_TARGETS", raising=False)
    extra, classes, lf, expected = CASES[case]
    path = write(tmp_path, extra, lf=lf, classes=classes)
    argv = harness(tmp_path, "run", str(path)) if command == "run" else ["validate", str(path)]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert err.startswith(expected.format(path=path, lf=path.parent / "lf.py")), err


@pytest.mark.integration  # waits out a timeout
def test_a_locustfile_that_hangs_at_import_is_stopped_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight_module, "LOCUSTFILE_TIMEOUT_S", 3.0)
    path = write(tmp_path, lf="import time\ntime.sleep(60)\n")
    scenario = resolve_scenario(path)
    with pytest.raises(BadInputError) as caught:
        preflight(scenario, RunRequest(state_dir=tmp_path / "state", source=str(path)))
    assert (
        str(caught.value)
        == f"{path}: load.locustfile: {tmp_path / 'lf.py'} did not import within 3s"
    )


@pytest.mark.integration  # the locustfile's probe
def test_the_locustfile_is_never_imported_in_this_process(tmp_path: Path) -> None:
    path = write(tmp_path, lf=LOCUSTFILE + "\nimport sys\nsys.modules['h5_marker'] = sys\n")
    checked = preflight(resolve_scenario(path), RunRequest(state_dir=tmp_path / "state"))
    assert checked.user_classes == ("ShopUser",)
    assert "h5_marker" not in sys.modules
    assert "lf" not in sys.modules


@pytest.mark.integration  # the locustfile's probe
def test_validate_says_valid_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "faults: [{name: k, action: kill, target: app-2, at: 0s, for: 1s}]\n"
        "slos: [{name: r, expr: 'recovery_time(k) < 5s'}]\n",
        classes="user_classes: [ShopUser]",
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"valid: {path} (local stack, 1 phase, 1 fault, 1 SLO; user classes ShopUser)\n"


@pytest.mark.integration  # the harness command
def test_validate_on_the_command_line(tmp_path: Path) -> None:
    """The installed command: exit code and streams as a user sees them."""
    import subprocess

    path = write(tmp_path, "faults: [{name: k, action: kill, target: app-9, at: 0s}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"harness: {path}: faults[0].target: no instance 'app-9' in the stack "
        "(it has app-1, app-2, app-3)"
    ]


@pytest.mark.integration  # the locustfile's probe
def test_a_taken_port_is_one_line_naming_it_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_started: None
) -> None:
    free = StackPorts.free()
    path = write(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        argv = harness(
            tmp_path,
            "run",
            str(path),
            "--entry-port",
            str(taken),
            "--toxiproxy-port",
            str(free.toxiproxy_api),
            "--postgres-port",
            str(free.postgres),
            "--app-db-proxy-port",
            str(free.app_db_proxy),
            "--app-ports",
            ",".join(map(str, free.apps)),
            "--lb-proxy-ports",
            ",".join(map(str, free.lb_proxies)),
            "--caddy-admin-port",
            "0",
        )
        assert main(argv) == 3
    assert one_line_error(capsys) == (
        f"harness: port {taken} (--entry-port) is taken on 127.0.0.1; caddy entry needs it"
    )


def test_port_options_on_an_external_stack_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_started: None
) -> None:
    path = write(tmp_path, "stack: {kind: external, entry_url: 'http://127.0.0.1:9'}\n")
    assert main(harness(tmp_path, "run", str(path), "--entry-port", "18080")) == 2
    assert one_line_error(capsys) == (
        "harness: --entry-port: an external stack is not started by the harness (port options "
        "are for the local and compose stacks)"
    )


def test_a_compose_stack_takes_only_the_entry_and_toxiproxy_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_started: None
) -> None:
    path = write(tmp_path, "stack: {kind: compose}\n")
    assert main(harness(tmp_path, "run", str(path), "--postgres-port", "25432")) == 2
    assert one_line_error(capsys) == (
        "harness: --postgres-port: a compose stack takes only --entry-port and --toxiproxy-port"
    )


def test_declared_parts_of_a_scaled_service() -> None:
    parts = DeclaredParts(instances=("web",), proxies=None, scaled=("web",))
    assert parts.has_instance("web")
    assert parts.has_instance("web-2")
    assert not parts.has_instance("web-x")
    assert not parts.has_instance("db-1")
    assert parts.has_proxy("anything")  # known only once the stack runs
