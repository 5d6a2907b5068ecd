"""``harness proxy serve``: the embedded Toxiproxy-compatible server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from harness.exit_codes import ExitCode

__all__ = ["proxy"]


@click.group()
def proxy() -> None:
    """The embedded Toxiproxy-compatible server."""


@proxy.command("serve", context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Address the API and proxies bind to.")
@click.option("--port", default=8474, type=click.IntRange(0, 65535), help="API port.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON array of proxies to create at start (the format of /populate).",
)
@click.option(
    "--proxy-metrics",
    is_flag=True,
    show_envvar=True,
    help="Serve GET /metrics with the bytes each proxy moved (Toxiproxy's -proxy-metrics).",
)
@click.option(
    "--runtime-metrics",
    is_flag=True,
    show_envvar=True,
    help="Serve GET /metrics with process and Python runtime metrics (-runtime-metrics).",
)
def proxy_serve(
    host: str, port: int, config_file: Path | None, proxy_metrics: bool, runtime_metrics: bool
) -> ExitCode:
    """Run the embedded Toxiproxy server in the foreground until SIGINT or SIGTERM."""
    # deferred: aiohttp, for this command alone
    from harness.proxy.server import serve_forever

    serve_forever(
        host=host,
        port=port,
        config_file=config_file,
        proxy_metrics=proxy_metrics,
        runtime_metrics=runtime_metrics,
    )
    return ExitCode.OK
