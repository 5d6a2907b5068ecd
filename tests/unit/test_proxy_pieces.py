"""Pieces of the embedded Toxiproxy server that can be checked without sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import BadInputError
from harness.proxy.proxy import ApiError, resolve_listen, split_host_port
from harness.proxy.server import load_config
from harness.proxy.toxics import TOXIC_TYPES, Slicer, ToxicConfig, ToxicInputError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("length", "average", "variation"),
    [(480_000, 1024, 512), (1000, 10, 0), (5, 1, 1), (1, 1024, 0), (65536, 100, 100)],
)
def test_slicer_pieces_cover_the_chunk_in_order_near_the_average_size(
    length: int, average: int, variation: int
) -> None:
    ends = Slicer.cut_points(length, average, variation)
    starts = [0, *ends[:-1]]
    sizes = [end - start for start, end in zip(starts, ends, strict=True)]
    assert ends[-1] == length
    assert all(size > 0 for size in sizes)
    # Halving stops once a piece is within average + variation; halves are at least a third of
    # their parent, so no piece can be much smaller than (average - variation) / 3.
    assert max(sizes) <= average + variation or len(sizes) == 1


def test_slicer_piece_count_matches_the_real_servers_test_range() -> None:
    counts = [len(Slicer.cut_points(480_000, 1024, 512)) for _ in range(20)]
    assert all(240 <= count <= 720 for count in counts), counts


@pytest.mark.parametrize(
    ("kind", "attributes", "message"),
    [
        ("bandwidth", {"rate": 0}, "rate must be greater than 0"),
        ("bandwidth", {"rate": -5}, "rate must be greater than 0"),
        ("slicer", {"average_size": 0, "size_variation": 0, "delay": 0}, "average_size"),
        ("slicer", {"average_size": 10, "size_variation": 11, "delay": 0}, "size_variation"),
        ("latency", {"latency": 10, "jitter": -1}, "jitter"),
    ],
)
def test_values_that_break_the_real_server_are_refused(
    kind: str, attributes: dict[str, int], message: str
) -> None:
    with pytest.raises(ToxicInputError, match=message):
        TOXIC_TYPES[kind].validate(attributes)


def test_valid_values_pass_validation() -> None:
    TOXIC_TYPES["bandwidth"].validate({"rate": 1})
    TOXIC_TYPES["slicer"].validate({"average_size": 10, "size_variation": 10, "delay": 0})
    TOXIC_TYPES["latency"].validate({"latency": -5, "jitter": 0})  # negative latency: no delay


def test_toxic_json_uses_the_real_servers_key_order_and_integral_toxicity() -> None:
    config = ToxicConfig("l", "latency", "UPSTREAM", 1.0, {"latency": 5, "jitter": 0})
    assert list(config.to_json()) == ["attributes", "name", "type", "stream", "toxicity"]
    assert json.dumps(config.to_json()["toxicity"]) == "1"
    assert config.direction == "upstream"
    assert config.to_json()["stream"] == "UPSTREAM"


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:5432", ("::1", 5432)), (":0", ("", 0))],
)
def test_addresses_split_like_go(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["nohost", "host:", "host:99999", "host:http"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="port"):
        split_host_port(address)


def test_localhost_listens_on_ipv4_and_empty_host_on_the_servers_host() -> None:
    assert resolve_listen("localhost:0", "127.0.0.1") == ("127.0.0.1", 0)
    assert resolve_listen(":1234", "127.0.0.1") == ("127.0.0.1", 1234)
    with pytest.raises(ApiError) as info:
        resolve_listen("no-port", "127.0.0.1")
    assert info.value.status == 500


def test_config_file_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "proxies.json"
    bad.write_text('[{"name": "db", "listen": "127.0.0.1:0"}]')
    with pytest.raises(BadInputError, match=r"proxies.json: \[0\].upstream: required"):
        load_config(bad)
    bad.write_text("{not json")
    with pytest.raises(BadInputError, match=r"proxies.json: line 1: invalid JSON"):
        load_config(bad)
    with pytest.raises(BadInputError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_serve_with_a_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "proxies.json"
    bad.write_text('{"name": "db"}')
    assert main(["proxy", "serve", "--port", "0", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "expected a JSON array" in err
