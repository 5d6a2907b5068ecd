"""Post-run checks: numbers read from the system under test before the load and after the run,
which SLOs compare with each other and with what the load recorded (``check(orders, delta) ==
requests(status 2xx, where name == "/checkout")``).

A scenario declares them under ``checks:`` (:class:`harness.scenario.PostCheck`): an SQL query
against the stack's database, or an HTTP GET on its entry URL with a JSON field path. ``harness
run`` reads every check once before the load starts and once after the run, when every fault is
reverted; each reading is a ``check`` event of the run store, so a crash keeps the baseline::

    probe      one reading: SQL (asyncpg, or psql in a compose database container) or HTTP
    readings   the readings as events of the run store, and back: before, after, delta
"""

from harness.integrity.probe import CheckTarget, read_check
from harness.integrity.readings import CheckValues, check_values, record_checks

__all__ = ["CheckTarget", "CheckValues", "check_values", "read_check", "record_checks"]
