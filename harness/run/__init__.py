"""The run layer: the one pipeline that owns a run, and the hooks extensions attach to.

::

    request     RunRequest (the flags), ScenarioOverrides, RunOutcome
    preflight   resolve_scenario (a file with the overrides), the checks before anything starts
    pipeline    run(scenario, request): scenario → stack → load + faults → record → verdict →
                report; run_file(path, ...) for a caller holding a file
    stackup     every stack the run layer builds, and every question about its kind
    children    the Locust processes: start, supervise, stop; exec_worker (`harness worker`)
    signals     SIGINT / SIGTERM forwarded to the master
    settle      how the run ended once the master is gone; faults rolled back from the journal
    postchecks  the scenario's checks, before and after
    conclude    judge, reports, verdict table, exit code
    hooks       the catalogue of hooks in the Locust master; extensions attach there
    master      the Locust master's process: python -m harness.run.master
    live_metrics  the extension serving the run's live metrics (--metrics-port), master only

Nothing is imported here on purpose: ``python -m harness.run.master`` imports this package before
the master module, and the master must import Locust (which monkey-patches the standard library
with gevent) before anything imports ssl or threading. Import the modules by their own names,
``from harness.run.pipeline import run``.
"""

__all__: list[str] = []
