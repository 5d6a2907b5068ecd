"""Load generation: the per-request recorder, its data structures, and the Locust glue.

Only the pure-Python pieces are imported here, so ``harness.rundir``, the CLI and the verdict code
can use them without pulling in Locust, whose import monkey-patches the process with gevent.
Modules that import Locust are reached by their own name, never from this file::

    pure (any process)                          Locust processes only
    buckets, histogram  the 100 ms recorder     plugin   shape, worker recorder, master side
    recording           the request hook        master   python -m harness.load.master
    collector           the master's receipt    worker   python -m harness.load.worker
    plan                phases on the timeline  entry    logging, loading the locustfile
    retry               backoff, Retry-After    users    RetryingHttpUser, NaiveRetryUser
    progress            the live line
    launch              the processes' argv
"""

from harness.load.buckets import (
    BUCKET_SECONDS,
    BUCKETS_PER_SECOND,
    AttemptRecord,
    Bucket,
    BucketFormatError,
    BucketRecorder,
    SerializedBucket,
    bucket_of,
    bucket_start,
    merge_all,
    merge_serialized,
)
from harness.load.histogram import Histogram

__all__ = [
    "BUCKETS_PER_SECOND",
    "BUCKET_SECONDS",
    "AttemptRecord",
    "Bucket",
    "BucketFormatError",
    "BucketRecorder",
    "Histogram",
    "SerializedBucket",
    "bucket_of",
    "bucket_start",
    "merge_all",
    "merge_serialized",
]
