"""The commands that read the history of a reports directory: ``history`` and ``compare``.

Thin: parse, one library call, an exit code. The library is imported when a command runs (the
comparison's HTML and JUnit writers are not what ``harness --help`` should pay for).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.cli.output import console
from harness.exit_codes import ExitCode

__all__ = ["HISTORY_COMMANDS", "compare_command", "history_command"]

_REPORTS = click.Path(file_okay=False, path_type=Path)


def _reports_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--reports",
        type=_REPORTS,
        default=Path("reports"),
        show_envvar=True,
        help="The reports directory whose history (history.sqlite) is read.",
    )(func)


@click.command("history", context_settings={"show_default": True})
@click.argument("scenario", required=False)
@_reports_option
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=20,
    show_envvar=True,
    help="Show the newest N runs.",
)
@click.option("--json", "as_json", is_flag=True, show_envvar=True, help="Print JSON instead.")
@click.option(
    "--rebuild",
    is_flag=True,
    show_envvar=True,
    help="Rebuild the index from the run directories first.",
)
def history_command(
    scenario: str | None, reports: Path, limit: int, as_json: bool, rebuild: bool
) -> int:
    """The runs and capacity searches recorded in the reports directory, newest first: when,
    which commit, the result, throughput, p99, 503 share, slowest recovery and capacity.

    An index that is missing or damaged is rebuilt from the run directories. Exit 0.
    """
    from harness.history import HistoryIndex  # deferred: sqlite and the row readers
    from harness.history.table import history_json, history_table  # deferred: see above

    index = HistoryIndex(reports)
    if rebuild:
        count = index.rebuild()
        click.echo(f"rebuilt {index.path} from {count} run directories", err=True)
    rows = index.rows(scenario, limit=limit)
    if as_json:
        click.echo(json.dumps(history_json(rows), indent=2, allow_nan=False))
        return ExitCode.OK
    out = console()
    if not rows:
        of = f" of scenario {scenario}" if scenario else ""
        out.print(f"no runs{of} in {reports}", markup=False, highlight=False)
        return ExitCode.OK
    title = f"history of {scenario or 'every scenario'} in {reports} (newest first)"
    out.print(history_table(rows, title), width=min(out.width, 100))
    return ExitCode.OK


@click.command("compare", context_settings={"show_default": True})
@click.argument("baseline")
@click.argument("run")
@_reports_option
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="KIND=VALUE",
    show_envvar=True,
    help="Override a tolerance: latency=20%, share=2% (points), recovery=1s, throughput=10%, "
    "capacity=10%. Repeatable; wins over the scenario's regression: section.",
)
@click.option(
    "--out",
    type=_REPORTS,
    default=None,
    show_default="the run's directory",
    show_envvar=True,
    help="Where compare.json, compare.xml (JUnit) and compare.html are written.",
)
@click.option("--json", "as_json", is_flag=True, show_envvar=True, help="Print JSON instead.")
def compare_command(
    baseline: str,
    run: str,
    reports: Path,
    tolerances: tuple[str, ...],
    out: Path | None,
    as_json: bool,
) -> int:
    """Compare RUN with BASELINE, figure by figure: per-phase throughput, p50/p95/p99 and 503
    share, recovery times, capacity. Each is a run directory, `latest`, `latest-pass` or a git
    ref (the newest run recorded at that commit); the baseline is looked for among the runs of
    RUN's scenario, never RUN itself.

    Exit 1 when a figure is worse than its tolerance by more than the history's noise, 0
    otherwise, 2 on bad input (a name that resolves to no run).
    """
    from harness.compare import (  # deferred: the JUnit and HTML writers
        compare_specs,
        comparison_json,
        comparison_table,
        write_comparison,
    )
    from harness.scenario.regression import flag_tolerances  # deferred: pydantic

    comparison, run_dir = compare_specs(baseline, run, reports, flag_tolerances(tolerances))
    paths = write_comparison(comparison, out or run_dir)
    if as_json:
        click.echo(json.dumps(comparison_json(comparison), indent=2, allow_nan=False))
    else:
        shown = console()
        shown.print(comparison_table(comparison), width=min(shown.width, 100))
        for path in paths:
            click.echo(f"wrote {path}")
    return ExitCode.FAILED if comparison.regressed else ExitCode.OK


HISTORY_COMMANDS: tuple[click.Command, ...] = (history_command, compare_command)
