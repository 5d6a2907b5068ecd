"""The record: what a run writes and every later layer reads. The bottom floor of the harness.

::

    histogram   latency histogram with fixed log-linear bins (mergeable, bounded)
    buckets     the 100 ms bucket, the recorder that fills buckets, attempt records
    events      event kinds, an event as read back, the EventSink protocol
    outcome     what counts as a failed request (the one definition)
    store       the run directory and its SQLite store (RunDir to read, RunWriter to write)

Nothing here imports another harness layer (only :mod:`harness.errors`), so the load, the
verdict and the report all read and write the same types without depending on each other.
"""

from harness.record.buckets import (
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
from harness.record.events import Event, EventKind, EventSink
from harness.record.histogram import Histogram
from harness.record.outcome import describe_failed, failed_count, is_failed
from harness.record.schema import NAMES_META, RunStatus
from harness.record.store import RunDir, RunWriter

__all__ = [
    "BUCKETS_PER_SECOND",
    "BUCKET_SECONDS",
    "NAMES_META",
    "AttemptRecord",
    "Bucket",
    "BucketFormatError",
    "BucketRecorder",
    "Event",
    "EventKind",
    "EventSink",
    "Histogram",
    "RunDir",
    "RunStatus",
    "RunWriter",
    "SerializedBucket",
    "bucket_of",
    "bucket_start",
    "describe_failed",
    "failed_count",
    "is_failed",
    "merge_all",
    "merge_serialized",
]
