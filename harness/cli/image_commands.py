"""``harness images seed``: the compose stack's container images, built without a registry."""

from __future__ import annotations

import time

import click

from harness.exit_codes import ExitCode
from harness.stack.images import seed

__all__ = ["images"]


@click.group()
def images() -> None:
    """Container images of the compose stack."""


@images.command("seed", context_settings={"show_default": True})
@click.option("--force", is_flag=True, show_envvar=True, help="Rebuild images that exist.")
@click.option(
    "--only",
    multiple=True,
    show_envvar=True,
    help="Build only this image (repeatable): debian, python, postgres, toxiproxy, caddy, shop, "
    "locust.",
)
def images_seed(force: bool, only: tuple[str, ...]) -> ExitCode:
    """Build every image compose/docker-compose.yml names, under those names, without a
    registry (for air-gapped runners). Images that exist are kept unless --force."""
    started = time.monotonic()
    results = seed(force=force, only=only, log=click.echo)
    built = sum(1 for r in results if r.action == "built")
    click.echo(f"{len(results)} images ready ({built} built) in {time.monotonic() - started:.1f}s")
    return ExitCode.OK
