"""Load generation: the Locust glue. The record it fills lives in :mod:`harness.record`.

Only pure-Python modules may be imported from outside a Locust process; those that import Locust
(which monkey-patches the process with gevent) are reached by their own name, never from here::

    pure (any process)                          Locust processes only
    recording           the request hook        plugin   shape, worker recorder, master side
    collector           the master's receipt    master   python -m harness.load.master
    plan                phases on the timeline  worker   python -m harness.load.worker
    retry               backoff, Retry-After    entry    logging, loading the locustfile
    progress            the live line           users    RetryingHttpUser, NaiveRetryUser
    launch              the processes' argv     open_model  the open (arrival-rate) model
"""
