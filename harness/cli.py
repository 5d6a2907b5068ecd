"""The ``harness`` command. Thin by design: parse, call the library, map errors to exit codes.

Every option also reads an environment variable (``HARNESS_<COMMAND>_<OPTION>``, shown in
``--help``), so CI can configure a run without editing the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness import __version__
from harness.errors import BadInputError, HarnessError

# Exit codes as ARCHITECTURE.md fixes them.
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@click.group(context_settings={"auto_envvar_prefix": "HARNESS", "show_default": True})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Load and chaos testing harness."""


@cli.group()
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
def proxy_serve(host: str, port: int, config_file: Path | None) -> None:
    """Run the embedded Toxiproxy server in the foreground until SIGINT or SIGTERM."""
    from harness.proxy.server import serve_forever

    serve_forever(host=host, port=port, config_file=config_file)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code; never a traceback for our errors."""
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("harness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("harness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except BadInputError as exc:
        click.echo(f"harness: {exc}", err=True)
        return EXIT_BAD_INPUT
    except HarnessError as exc:
        click.echo(f"harness: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
