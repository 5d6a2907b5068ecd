"""Load generation: the Locust glue. The record it fills lives in :mod:`harness.record`.

Only pure-Python modules may be imported from outside a Locust process; those that import Locust
(which monkey-patches the process with gevent) are reached by their own name, never from here::

    pure (any process)                          Locust processes only
    recording           the request hook        plugin   the master's side of a run
    collector           the master's receipt    shape    the phases as a Locust shape
    plan                phases on the timeline  worker_plugin  the recorder on every worker
    retry               backoff, Retry-After    master   Environment, runner, master.json
    progress            the live line           worker   python -m harness.load.worker
    launch              the processes' argv     entry    logging, loading the locustfile
    guarding            the live guards         users    RetryingHttpUser, NaiveRetryUser
    timeline            the fault timeline      open_model  the open (arrival-rate) model
    lifeline            stop when the run dies
    live_metrics        the live metrics' families
    otel                --otel: Locust's own OpenTelemetry

The master's process is :mod:`harness.run.master`: it hands this layer the fault timeline and
the live guard evaluator as protocols (:mod:`~harness.load.timeline`,
:mod:`~harness.load.guarding`), so nothing here imports the faults or the verdict.
"""
