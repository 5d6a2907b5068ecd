"""The shop image is this checkout's shop: its recipe hash follows compose/shop, a stale image is
rebuilt by ``harness images seed`` and refused by the compose stack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.stack import images

pytestmark = pytest.mark.unit


@pytest.fixture
def shop_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "shop"
    shutil.copytree(images.SHOP_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(images, "SHOP_DIR", copy)
    return copy


def test_the_recipe_follows_every_shop_file_and_the_requirements(
    shop_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = images.shop_recipe()
    assert images.shop_recipe() == first  # the same tree, the same hash
    (shop_copy / "shopapp" / "__pycache__").mkdir(exist_ok=True)
    (shop_copy / "shopapp" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert images.shop_recipe() == first  # caches are not what the image is built from

    routes = shop_copy / "shopapp" / "routes.py"
    routes.write_text(routes.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = images.shop_recipe()
    assert changed != first

    monkeypatch.setattr(images, "SHOP_REQUIREMENTS", (*images.SHOP_REQUIREMENTS, "extra>=1"))
    assert images.shop_recipe() not in (first, changed)


@pytest.mark.parametrize(
    ("exists", "label", "expected"),
    [
        (False, None, None),  # no image: compose says that itself
        (True, None, "built before images carried their recipe"),
        (True, "0" * 64, "compose/shop changed since it was built"),
        (True, "CURRENT", None),
    ],
)
def test_a_shop_image_is_stale_unless_its_label_is_the_current_recipe(
    shop_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    exists: bool,
    label: str | None,
    expected: str | None,
) -> None:
    recipe = images.shop_recipe()
    monkeypatch.setattr(images, "image_exists", lambda name: exists)
    monkeypatch.setattr(
        images, "image_label", lambda name, key: recipe if label == "CURRENT" else label
    )
    assert images.stale_shop() == expected
