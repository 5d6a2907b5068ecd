"""Hostile input: URLs two parsers read differently, nesting deep enough to crash a parser,
numbers and files with no upper bound, environment names that change how programs run, and
error lines that repeat a 30 MB value. Every one is a one-line ``BadInputError`` naming the file,
the field and the (shortened) value, never a traceback and never accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from urllib3.util import parse_url

from harness.cli import main
from harness.errors import MAX_LINE_CHARS, BadInputError, StackError
from harness.faults.targets import check_record
from harness.fields import MAX_NESTING
from harness.safety import TargetPolicy, TargetRefused, host_of, loads_json, url_problem
from harness.scenario import load_scenario
from harness.scenario.loader import parse_scenario
from harness.verdict.checks import parse_checks
from harness.verdict.language import parse_slo

from .yaml_text import yaml_text

pytestmark = pytest.mark.unit

LOCUSTFILE = "locust.py"


def scenario_text(tmp_path: Path, **sections: Any) -> str:
    (tmp_path / LOCUSTFILE).write_text("from locust import HttpUser\n")
    data: dict[str, Any] = {
        "load": {
            "locustfile": LOCUSTFILE,
            "phases": [{"name": "warmup", "duration": "10s", "users": 1, "spawn_rate": 1}],
        }
    }
    for key, value in sections.items():
        if key == "load":
            data["load"] = {**data["load"], **value}
        else:
            data[key] = value
    return yaml_text(data)


def refused(tmp_path: Path, **sections: Any) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text(tmp_path, **sections))
    with pytest.raises(BadInputError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    return message


# --- 5. URLs as the HTTP clients read them ------------------------------------------------------

CONFUSING_URLS = [
    "http://evil.example\\@127.0.0.1:1/",
    "http://evil.example@127.0.0.1:1/",
    "http://user:pw@127.0.0.1:1/",
    "http://127.0.0.1:1\\@evil.example/",
    "http://127.0.0.1 .evil.example:1/",
    "http://127.0.0.1\t:1/",
    "http://127.0.0.1:1/\x00",
    "http://evil.example\\.127.0.0.1:1/",
    "http://127.0.0.1%2eevil.example/",
]


def test_the_backslash_url_really_is_two_hosts_to_two_parsers() -> None:
    # Why the rule exists: the policy's parser and the clients' parser disagree.
    url = CONFUSING_URLS[0]
    assert urlsplit(url).hostname == "127.0.0.1"
    assert parse_url(url).host == "evil.example"


@pytest.mark.parametrize("url", CONFUSING_URLS)
def test_a_url_clients_could_read_another_host_in_is_refused(url: str) -> None:
    assert url_problem(url) is not None
    assert host_of(url) == ""
    with pytest.raises(TargetRefused) as caught:
        TargetPolicy().check_url(url, "stack.entry_url")
    assert str(caught.value).startswith("stack.entry_url: ")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "https://[::1]:8443/x?y=1", "http://localhost./a#b"]
)
def test_a_plain_url_passes(url: str) -> None:
    assert url_problem(url) is None
    TargetPolicy().check_url(url, "stack.entry_url")


@pytest.mark.parametrize("field", ["entry_url", "toxiproxy_url"])
def test_a_scenario_url_with_a_backslash_or_user_info_is_one_line(
    tmp_path: Path, field: str
) -> None:
    stack = {"kind": "external", "entry_url": "http://127.0.0.1:9000"}
    for url, why in ((CONFUSING_URLS[0], "backslash"), (CONFUSING_URLS[1], "user info")):
        message = refused(tmp_path, stack={**stack, field: url})
        assert f"stack.{field}: " in message
        assert why in message


def test_an_http_fault_url_with_user_info_is_refused(tmp_path: Path) -> None:
    call = {"url": "http://evil.example\\@127.0.0.1:9/flags", "body": "{}"}
    fault = {"name": "flag", "action": "http", "at": "1s", "for": "1s", "inject": call}
    message = refused(tmp_path, faults=[{**fault, "revert": call}])
    assert "faults[0].inject.url: " in message
    assert "backslash" in message


def test_a_journal_records_admin_url_with_a_backslash_is_refused() -> None:
    record = {"name": "maint", "admin_urls": ["http://evil.example\\@127.0.0.1:1/admin"]}
    with pytest.raises(TargetRefused, match="admin_urls: a backslash"):
        check_record(record, TargetPolicy())


# --- 6. nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[" * 20000, "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 3000))],
    ids=["flow-list-20000", "block-mapping-3000"],
)
def test_deeply_nested_yaml_is_one_line_not_a_recursion_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"  # a 3000-deep block mapping is 4.5 MB: parsed, not read
    with pytest.raises(BadInputError) as caught:
        parse_scenario(text, path)
    assert str(caught.value) == (
        f"{path}: line {1 if text.startswith('[') else MAX_NESTING + 1}, column "
        f"{MAX_NESTING + 1}: lists and mappings nested deeper than {MAX_NESTING} levels"
    )


def test_nesting_up_to_the_limit_is_still_yaml(tmp_path: Path) -> None:
    text = scenario_text(tmp_path) + "x: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)
    with pytest.raises(BadInputError, match='unknown key "x"'):
        parse_scenario(text, tmp_path / "s.yaml")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[" * 20000, "nested deeper than"),
        ('{"a":' * 3000 + "1" + "}" * 3000, "nested deeper than"),
        ('{"toxicity": NaN}', "NaN is not JSON"),
        ("[1e400]", "out of range"),
    ],
)
def test_json_from_outside_is_refused_before_it_is_built(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        loads_json(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"name": "' + "[{" * 5000 + '\\"]", "n": [1]}'
    assert loads_json(text)["n"] == [1]


def test_a_deeply_nested_journal_line_is_reported_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    journal = state_dir / "faults.jsonl"
    journal.write_text("[" * 20000 + "\n")
    journal.chmod(0o600)
    code = main(["rollback", "--state-dir", str(state_dir)])
    out = capsys.readouterr()
    err = out.out + out.err
    assert code == 3, err
    assert f"{journal} line 1: not JSON (JSON nested deeper than {MAX_NESTING} levels" in err
    assert "Traceback" not in err


# --- 7. bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "where", "what"),
    [
        ({"workers": 100000}, "load.workers", "<= 512"),
        ({"max_in_flight": 10**12}, "load.max_in_flight", "<= 1000000"),
        (
            {"phases": [{"name": "a", "duration": "1s", "users": 10**100, "spawn_rate": 1}]},
            "load.phases[0].users",
            "<= 100000",
        ),
        (
            {
                "phases": [
                    {"name": "a", "duration": "99999999999999999h", "users": 1, "spawn_rate": 1}
                ]
            },
            "load.phases[0].duration",
            "at most 720h",
        ),
        (
            {"phases": [{"name": "a", "duration": "1s", "users": 1, "spawn_rate": 1e300}]},
            "load.phases[0].spawn_rate",
            "> 0 and <= 1e+06",
        ),
        (
            {"model": "open", "phases": [{"name": "a", "duration": "1s", "rate": "10000000000/s"}]},
            "load.phases[0].rate",
            "arrival rate",
        ),
    ],
)
def test_a_number_past_its_bound_is_refused(
    tmp_path: Path, load: dict[str, Any], where: str, what: str
) -> None:
    message = refused(tmp_path, load=load)
    assert f"{where}: " in message
    assert what in message
    assert len(message) < 300


@pytest.mark.parametrize("latency", [10**30, 2**63])
def test_a_toxic_attribute_past_int64_is_refused(tmp_path: Path, latency: int) -> None:
    fault = {
        "name": "slow",
        "action": "toxic",
        "target": "app-db",
        "at": "1s",
        "for": "1s",
        "params": {"type": "latency", "latency": latency},
    }
    message = refused(tmp_path, faults=[fault])
    assert f"faults[0].params.latency: expected a whole number <= {2**63 - 1}" in message


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONSTARTUP", "PATH", "A"])
def test_the_sample_shop_takes_only_its_shop_settings(tmp_path: Path, name: str) -> None:
    message = refused(tmp_path, stack={"kind": "local", "env": {name: "1"}})
    assert f"stack.env.{name}: expected a SHOP_* setting" in message


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONSTARTUP", "DOCKER_HOST", "path"])
def test_a_users_compose_file_takes_no_variable_that_changes_how_programs_run(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / "compose.yml").write_text("services: {}\n")
    stack = {"kind": "compose", "compose_file": "compose.yml", "env": {name: "1"}}
    message = refused(tmp_path, stack=stack)
    assert f"stack.env.{name}: expected a variable your compose file reads" in message


def test_documented_env_names_pass(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text("services: {}\n")
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text(tmp_path, stack={"env": {"SHOP_MAX_INFLIGHT": "32"}}))
    assert dict(load_scenario(path).stack.env) == {"SHOP_MAX_INFLIGHT": "32"}
    stack = {"kind": "compose", "compose_file": "compose.yml", "env": {"WEB_REPLICAS": "2"}}
    path.write_text(scenario_text(tmp_path, stack=stack))
    assert dict(load_scenario(path).stack.env) == {"WEB_REPLICAS": "2"}


def test_a_locustfile_must_be_a_regular_python_file_of_bounded_size(tmp_path: Path) -> None:
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "dir.py").mkdir()
    (tmp_path / "big.py").write_bytes(b"#" * 1_000_001)
    (tmp_path / "notes.txt").write_text("x = 1\n")
    cases = {
        "/dev/zero": "expected a Python file ending in .py",
        "zero.py": "expected a regular file",
        "dir.py": "expected a regular file",
        "big.py": "larger than 1000000 bytes",
        "notes.txt": "expected a Python file ending in .py",
    }
    for locustfile, why in cases.items():
        message = refused(tmp_path, load={"locustfile": locustfile})
        assert "load.locustfile: " in message
        assert why in message, message


def test_a_scenario_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="larger than 1000000 bytes"):
        load_scenario("/dev/zero")
    fifo = tmp_path / "big.yaml"
    fifo.write_bytes(b"#" * 1_000_001)
    with pytest.raises(BadInputError, match="larger than"):
        load_scenario(fifo)


# --- 8. SLO errors and error length ---------------------------------------------------------------


def test_an_unknown_phase_in_an_slo_points_at_its_column(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text(tmp_path, slos=["availability >= 99% during phase nope"]))
    with pytest.raises(BadInputError) as caught:
        parse_checks(load_scenario(path))
    assert str(caught.value) == (
        'slos[0]: unknown phase "nope" (known: warmup) at column 34: '
        "availability >= 99% during phase <<here>>nope"
    )


@pytest.mark.parametrize("share", ["500%", "100.5%"])
def test_a_share_above_100_percent_is_refused(share: str) -> None:
    with pytest.raises(BadInputError, match=r"is a share at column 24 \(from 0% to 100%\)"):
        parse_slo(f"ratio(status == 503) < {share}")
    assert parse_slo("ratio(status == 503) <= 100%").threshold.value == 1.0


def test_an_error_line_is_bounded_whatever_the_value(tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 200)
    message = str(BadInputError(f"{long_dir}/x.yaml: cannot read"))
    assert len(message) <= MAX_LINE_CHARS
    assert message.endswith("...")
    with pytest.raises(BadInputError) as caught:
        load_scenario(long_dir / "x.yaml")
    assert len(str(caught.value)) < 300
    assert str(caught.value).endswith("cannot read: No such file or directory")
    huge_name = "n" * 500_000
    fault = {"name": huge_name, "action": "kill", "target": "app-1", "at": "1s"}
    with pytest.raises(BadInputError) as caught:
        parse_scenario(scenario_text(tmp_path, faults=[fault]), tmp_path / "s.yaml")
    assert "faults[0].name: expected a name" in str(caught.value)
    assert len(str(caught.value)) < 300
    # Errors carrying a log tail keep their lines, each bounded.
    tail = StackError("app-1 exited\n" + "x" * 5000 + "\nlast line")
    assert [len(line) <= MAX_LINE_CHARS for line in str(tail).splitlines()] == [True] * 3
