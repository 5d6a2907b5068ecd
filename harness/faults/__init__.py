"""Fault injection: one protocol, one module per fault family, a timeline that guarantees every
revert, a durable journal, and the rollback that reads it after a crash.

::

    base         the Fault protocol: name, kind, target, describe, inject, revert (idempotent),
                 to_record; self_healing faults have nothing to revert once injected
    model        FaultModel: what every fault entry of a scenario has (name, action, target, at,
                 for); each family module below adds its own model next to its injector
    process      kill / pause / restart an instance        (KillInstance, PauseInstance, ...)
    toxic        a Toxiproxy toxic on a proxy, a proxy down (AddToxics, DisableProxy)
    database     db-throttle: latency and/or bandwidth toxics on the app-db link
    maintenance  the shop's maintenance mode, through its admin API; elsewhere a 503 at the edge
    http_toxic   http-abort / http-delay: an HTTP toxic on a proxy (the harness's own Toxiproxy)
    exec_fault   exec: the user's inject and revert commands, argument lists, never a shell
    http_call    http: the user's inject and revert HTTP calls, held to the target policy
    envref       ${NAME} in the user's commands and calls, expanded only when they run
    registry     FAULT_FAMILIES: action -> (model, builder, record reader); a new family is
                 one module here plus one line there
    factory      build_fault (scenario model + stack), fault_from_record (journal record)
    journal      the fsync'd JSON-lines journal: journaled before inject, reverted after revert
    timeline     FaultTimeline: tick() injects and reverts on time, revert_all() on every way out
    rollback     roll_back: revert the journal's pending faults after a crash (`harness rollback`)
    lease        fault_lease: a lease the injecting process renews; the embedded Toxiproxy
                 lifts what is attached to it (toxics, disabled proxies) when renewals stop

Nothing here imports gevent: the timeline runs in the Locust master and the rollback in the CLI,
both with plain blocking calls.
"""

from harness.faults.base import Fault
from harness.faults.envref import check_fault_env
from harness.faults.factory import Scheduled, build_fault, fault_from_record, faults_of_scenario
from harness.faults.http_call import with_target_policy
from harness.faults.http_toxic import check_http_support
from harness.faults.journal import (
    JOURNAL_FILE,
    FaultEvent,
    Journal,
    PendingFault,
    run_store_listener,
)
from harness.faults.lease import fault_lease
from harness.faults.rollback import RollbackOutcome, RollbackResult, roll_back
from harness.faults.timeline import FaultTimeline, RevertFailure

__all__ = [
    "JOURNAL_FILE",
    "Fault",
    "FaultEvent",
    "FaultTimeline",
    "Journal",
    "PendingFault",
    "RevertFailure",
    "RollbackOutcome",
    "RollbackResult",
    "Scheduled",
    "build_fault",
    "check_fault_env",
    "check_http_support",
    "fault_from_record",
    "fault_lease",
    "faults_of_scenario",
    "roll_back",
    "run_store_listener",
    "with_target_policy",
]
