"""Load generation: the per-request recorder and its data structures (and, later, Locust glue).

Only the pure-Python pieces are imported here, so ``harness.rundir`` and the verdict code can use
them without pulling in Locust, whose import monkey-patches the process with gevent. Modules that
import Locust are reached by their own name (``harness.load.<module>``), never from this file.
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
