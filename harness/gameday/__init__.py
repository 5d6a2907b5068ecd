"""Game days: a run people drive by hand while it plays (``harness gameday``).

::

    control   gameday.json in the state directory (URL, token), and the client the CLI's
              ``harness inject/revert/status`` use to reach a running game day
    live      the SLOs and guards over a sliding window of recent buckets
    desk      the chaos desk: the timeline, the phase and the live checks as one state; inject
              and revert by hand, answered with an HTTP status
    web       the chaos page, its API and a "Chaos" tab on Locust's web UI (master only: Flask)

Hand-made faults go through the run's own fault timeline and journal (journaled before they are
injected, reverted on every way out), so the report and ``harness rollback`` treat them like the
scheduled ones; their events carry ``manual`` and ``who``.
"""

from harness.gameday.control import CONTROL_FILE, ControlFile, GamedayClient, NoGameday, default_who

__all__ = ["CONTROL_FILE", "ControlFile", "GamedayClient", "NoGameday", "default_who"]
