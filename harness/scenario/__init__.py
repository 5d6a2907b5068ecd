"""The scenario file: what to run, for how long, what to break and what must hold.

A scenario is a YAML file, read with a safe loader and validated once, here, into frozen models.
Everything after this module (the stack, the load shape, the fault timeline, the verdict) trusts
the model and never re-checks it. Anything wrong is a :class:`~harness.errors.BadInputError`
with one line naming the file, the field path and the bad value::

    scenarios/x.yaml: faults[2].for: expected a duration like 30s, got "soon"
    scenarios/x.yaml: load.phases[1].users: expected a whole number >= 0, got -3
    scenarios/x.yaml: load.phaes: unknown key "phaes" (did you mean "phases"?)
    scenarios/x.yaml: line 7, column 3: bad YAML: mapping values are not allowed here

The format, in full::

    name: flash-sale                  # optional; defaults to the file name without .yaml
    description: A sale opens and a backend dies mid-spike.
    stack:
      kind: local                     # local (default) | compose | external
      entry_url: http://127.0.0.1:8080      # required for external; an override otherwise
      toxiproxy_url: http://127.0.0.1:8474  # required for external when faults use Toxiproxy
      env: {SHOP_MAX_INFLIGHT: "32"}  # extra environment for the shop instances (not external)
      # kind compose only, each optional (the defaults are the sample stack, compose/):
      # compose_file: ../deploy/compose.yml         # relative to this file
      # project: myshop                             # compose project name (default harness)
      # entry: {service: caddy, port: 80, ready_path: /readyz}   # port: in the container
      # backends: {services: [app-1, app-2, app-3], port: 8000, health_path: /healthz}
      # toxiproxy: {service: toxiproxy, port: 8474}  # its API, published on the host
      # proxies: [{name: app-db, listen: "0.0.0.0:15433", upstream: "postgres:5432"}]
    allow_targets: [staging.example.com]  # hosts besides loopback that load and faults may reach
    load:
      locustfile: shop_locustfile.py  # relative to this file; must exist
      user_classes: [ShopUser]        # optional: the locustfile's classes to run (default: all)
      workers: 0                      # optional: Locust worker processes (0 = run in the master)
      phases:                         # back to back, in this order
        - {name: warmup, duration: 20s, users: 20, spawn_rate: 10}
        - {name: spike, duration: 40s, users: 120, spawn_rate: 50}
        - {name: cooldown, duration: 20s, users: 20, spawn_rate: 50}
    faults:
      - name: kill-app-1
        action: kill                  # kill | pause | restart: a shop instance (app-1, app-2, ...)
        target: app-1
        at: 25s                       # offset from the start of the run; omitted: a catalogue
                                      # fault, injected by hand on a game day (harness gameday)
        for: 10s                      # optional; omitted = until the run ends (reverted then)
      - name: slow-db
        action: toxic                 # toxic | down: a Toxiproxy proxy (lb-app-1, ..., app-db)
        target: app-db
        at: 30s
        for: 15s
        params: {type: latency, latency: 800, jitter: 50, stream: downstream, toxicity: 1.0}
      - {name: db-throttle, action: db-throttle, at: 50s, for: 5s, params: {rate: 50}}
      - {name: maintenance, action: maintenance, at: 65s, for: 3s}   # no target: the whole shop
    slos:
      - "ratio(status == 503) < 5% during phase spike"      # parsed by harness.verdict
      - {name: no-500s, expr: "count(status == 500) == 0"}
    guards:
      - "abort if ratio(status >= 500) > 50% for 15s"
    checks:                           # numbers read before the load and after the run
      - {name: orders, sql: "SELECT count(*) FROM orders"}     # the stack's own database
      - {name: stock, http: /stats, field: stock.total}        # GET on the entry URL, JSON

Rules beyond the types:

- Durations are ``500ms``, ``1.5s``, ``30s``, ``2m``, ``1m30s``, ``1h`` (:mod:`harness.durations`);
  a bare number is refused because it could be seconds or milliseconds. ``at`` may be ``0s``; a
  phase's ``duration`` and a fault's ``for`` may not.
- Phase and fault names are words (letters, digits, ``-``, ``_``, ``.``) and unique: SLO windows
  refer to them by name (``during phase spike``).
- A fault starts before the phases end and, with ``for``, ends no later than they do.
- ``params`` per action: ``toxic`` takes ``type`` (latency, bandwidth, timeout, reset_peer,
  slow_close, limit_data, slicer), ``stream`` (upstream | downstream, default downstream),
  ``toxicity`` (0..1, default 1) and the type's attributes as whole numbers: latency ``latency``
  and ``jitter`` (ms); bandwidth ``rate`` (KB/s); timeout and reset_peer ``timeout`` (ms);
  slow_close ``delay`` (ms); limit_data ``bytes``; slicer ``average_size``, ``size_variation``
  (bytes) and ``delay`` (µs). ``db-throttle`` takes ``latency`` (ms, with optional ``jitter``)
  and/or ``rate`` (KB/s), and targets ``app-db`` unless told otherwise. ``kill``, ``pause``,
  ``restart``, ``down`` and ``maintenance`` take no params; ``maintenance`` takes no target.
- On the local stack the names are known, so targets are checked: instances ``app-<n>``, proxies
  ``lb-app-<n>`` and ``app-db``. An external stack cannot have its instances killed or its
  maintenance flipped by the harness, and needs ``toxiproxy_url`` for Toxiproxy faults.
- Only loopback and ``allow_targets`` hosts may appear in ``entry_url`` and ``toxiproxy_url``, so a
  typo cannot point a load test at someone else's server.
- Paths (``locustfile``, ``compose_file``) are relative to the scenario file.
- A compose stack's instances are its backend services' containers: ``web`` for a service that
  runs one container, ``web-1``, ``web-2``, ... (compose's container number) for one scaled up.
  ``entry`` and ``toxiproxy`` name a service and the port it listens on inside its container;
  the harness finds where that port is published on the host. ``proxies`` are created through
  the Toxiproxy API when the stack comes up (``POST /populate``); the ones Toxiproxy already
  has are found through its API either way. Targets are checked against the running project.

:meth:`Scenario.to_dict` is the resolved form the run directory keeps (durations in seconds, paths
absolute); :meth:`Scenario.from_dict` reads it back.

The package, one job per module::

    stack      the stack section: Stack, its compose topology (ComposeEntry, ProxyLink, ...)
    load       the load and capacity sections: Load, Phase, Capacity
    checks     slos, guards and post-run checks: Slo, Guard, PostCheck
    faults     AnyFault: the union of the fault families' models (harness.faults.registry)
    model      Scenario: the sections assembled, the timeline, the checks across sections
    fields     field types of the scenario's own sections (harness.fields has the shared ones)
    messages   a validation error as the one line users see
    loader     the strict YAML loader: load_scenario, parse_scenario

The fault models themselves live with their injectors in :mod:`harness.faults` (``process``,
``toxic``, ``database``, ``maintenance``), each family's next to its injector; they are
re-exported here, as is ``Fault``, the base of them all (:class:`harness.faults.model.FaultModel`).
"""

from harness.faults.database import DbThrottleFault, DbThrottleParams
from harness.faults.maintenance import MaintenanceFault
from harness.faults.model import FaultModel as Fault
from harness.faults.process import InstanceFault
from harness.faults.registry import FAULT_ACTIONS, INSTANCE_ACTIONS, TOXIPROXY_ACTIONS
from harness.faults.toxic import (
    TOXIC_ATTRIBUTES,
    TOXIC_TYPES,
    ProxyDownFault,
    ToxicFault,
    ToxicParams,
)
from harness.scenario.checks import Guard, PostCheck, Slo
from harness.scenario.faults import AnyFault
from harness.scenario.load import Capacity, Load, LoadModel, Phase
from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.model import Scenario, Window
from harness.scenario.stack import (
    ComposeBackends,
    ComposeEntry,
    ComposeToxiproxy,
    ProxyLink,
    Stack,
    StackKind,
)

__all__ = [
    "FAULT_ACTIONS",
    "INSTANCE_ACTIONS",
    "TOXIC_ATTRIBUTES",
    "TOXIC_TYPES",
    "TOXIPROXY_ACTIONS",
    "AnyFault",
    "Capacity",
    "ComposeBackends",
    "ComposeEntry",
    "ComposeToxiproxy",
    "DbThrottleFault",
    "DbThrottleParams",
    "Fault",
    "Guard",
    "InstanceFault",
    "Load",
    "LoadModel",
    "MaintenanceFault",
    "Phase",
    "PostCheck",
    "ProxyDownFault",
    "ProxyLink",
    "Scenario",
    "Slo",
    "Stack",
    "StackKind",
    "ToxicFault",
    "ToxicParams",
    "Window",
    "load_scenario",
    "parse_scenario",
]
