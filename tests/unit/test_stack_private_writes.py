"""The local stack writes its state directory's files without following links (issue 15, B).

Toxiproxy's proxy file, Caddy's config and the logs are written by ``up`` as the harness's user
(root in CI): a symbolic link planted at one of those paths must be refused with one line, and
the file it points at left exactly as it was. Each case stops before any process is started.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import StackError
from harness.stack import local_shop
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts
from harness.stack.state import StateDir

pytestmark = pytest.mark.unit

PRECIOUS = b"somebody else's file\n"


def _config() -> LocalStackConfig:
    return LocalStackConfig(ports=StackPorts.free(instances=2)).with_token()


def _plant(link: Path, tmp_path: Path) -> Path:
    """A link at ``link`` to a file that must stay untouched; returns that file."""
    target = tmp_path / "precious.txt"
    target.write_bytes(PRECIOUS)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return target


def _refused_in_one_line(call: Callable[[], object], path: Path) -> None:
    with pytest.raises(StackError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "refused" in message


def test_a_link_at_toxiproxys_proxy_file_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    link = StateDir(state).toxiproxy_config
    target = _plant(link, tmp_path)
    stack = LocalStack(state, _config())
    _refused_in_one_line(lambda: stack._start_toxiproxy(_config()), link)
    assert target.read_bytes() == PRECIOUS
    assert link.is_symlink()


def test_a_link_at_caddys_config_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    state = tmp_path / "state"
    link = StateDir(state).caddy / "caddy.json"
    target = _plant(link, tmp_path)
    link.parent.chmod(0o755)
    stack = LocalStack(state, _config())
    _refused_in_one_line(lambda: stack._spawn_caddy(_config()), link)
    assert target.read_bytes() == PRECIOUS
    # Caddy's admin socket goes in this directory: only its owner may enter it.
    assert link.parent.stat().st_mode & 0o777 == 0o700


def test_a_link_at_a_shop_log_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    link = tmp_path / "logs" / "app-1.log"
    target = _plant(link, tmp_path)
    endpoint = Endpoint("127.0.0.1", 1)
    with pytest.raises(StackError, match=r"app-1\.log: cannot open the log"):
        local_shop.spawn_app("app-1", endpoint, {}, link)
    with pytest.raises(StackError, match=r"app-1\.log: cannot open the log"):
        local_shop.migrate({}, link)
    assert target.read_bytes() == PRECIOUS
