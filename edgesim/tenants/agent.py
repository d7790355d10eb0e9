"""The edge agent: watches the tenants in the config store and makes its edge serve exactly them.

Run by the lab supervisor inside each edge: `python -m edgesim.tenants.agent --lab pop --edge edge1 ...`.
It applies the store's tenants whenever they change (a watch wakes it; it also reads the store every
second, its health check) and again every few seconds, which repairs what was changed by hand. When the
store cannot be reached it keeps the last config it applied (also kept on disk, for a restart without the
store) and catches up as soon as the store answers again. Once it has applied a config it serves its status on
--listen: `/status` (JSON) and `/metrics` (Prometheus text).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from edgesim import guard, locks, namespaces
from edgesim.errors import EdgesimError
from edgesim.files import atomic_write_json
from edgesim.metrics import exporter
from edgesim.metrics.families import Source
from edgesim.plan.naming import tenant_netns
from edgesim.routing import metrics as routing_metrics
from edgesim.state import LabState
from edgesim.tenants import metrics, nft
from edgesim.tenants.gre import GreEndpoint
from edgesim.tenants.reconcile import EdgeContext, Reconciler
from edgesim.tenants.spec import MARK_BASE, TenantSpec
from edgesim.tenants.store import Snapshot, Store, StoreError

# How often the store is read even without a watch event (its health check), and how often the whole
# config is applied again when nothing changed, to repair what was changed by hand.
POLL_S = 1.0
REPAIR_S = 5.0
# How long a store request may take before the store counts as unreachable.
STORE_TIMEOUT_S = 1.0


def log(message: str) -> None:
    """One line to the agent's log (the supervisor sends stdout to logs/<edge>-tenants.log)."""
    print(f"{time.strftime('%H:%M:%S')} agent: {message}", flush=True)


@dataclass
class Applied:
    """The config this agent last applied, and where it came from."""

    revision: int = 0
    source: str = "none"  # store | cache | none
    at: float = 0.0
    tenants: dict[str, TenantSpec] = field(default_factory=dict)


class Agent:
    """One edge's agent: the reconcile loop and the state its status page shows."""

    def __init__(self, context: EdgeContext, store: Store, cache: Path) -> None:
        self.context = context
        self.store = store
        self.cache = cache
        self.reconciler = Reconciler(
            context,
            GreEndpoint(
                context.gre_endpoint, by_source=False, check_source=True, mark_base=MARK_BASE, to_context=True
            ),
        )
        self.applied = Applied()
        self.reachable: bool | None = None
        self.store_error = ""
        self.invalid: dict[str, str] = {}
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._cancel_watch: Any = None
        self._repaired = 0.0

    def run(self, listen: str) -> None:
        """Reconcile until stopped; start serving the status once a config is applied."""
        server: ThreadingHTTPServer | None = None
        self._load_cache()
        while not self.stop.is_set():
            if server is None and self.applied.source != "none":
                server = _serve(self, listen)
            snapshot = self._read_store()
            if snapshot is not None and snapshot.ready:
                self._apply(self._desired(snapshot), snapshot.revision, "store")
                self._ensure_watch(snapshot.revision)
            elif self.applied.source != "none":
                # Store unreachable (or not seeded yet): keep the last good config, and repair it.
                self._apply(self.applied.tenants, self.applied.revision, self.applied.source)
            self.wake.wait(POLL_S)
            self.wake.clear()
        if self._cancel_watch:
            self._cancel_watch()
        if server is not None:
            server.shutdown()

    def _read_store(self) -> Snapshot | None:
        try:
            snapshot = self.store.snapshot()
        except StoreError as err:
            if self.reachable is not False:
                kept = self.applied.revision
                log(f"config store unreachable ({err}); keeping the config of revision {kept}")
            self.reachable, self.store_error = False, str(err)
            self._stop_watch()
            return None
        if self.reachable is False:
            log(f"config store reachable again at revision {snapshot.revision}")
        self.reachable, self.store_error = True, ""
        return snapshot

    def _desired(self, snapshot: Snapshot) -> dict[str, TenantSpec]:
        """The store's tenants; a record that does not validate keeps its last good version."""
        if snapshot.invalid != self.invalid:
            for key, why in snapshot.invalid.items():
                log(f"ignoring {key}: {why}")
            self.invalid = dict(snapshot.invalid)
        desired = dict(snapshot.tenants)
        for key in snapshot.invalid:
            name = key.rsplit("/", 1)[-1]
            if name in self.applied.tenants and name not in desired:
                desired[name] = self.applied.tenants[name]
        return desired

    def _apply(self, tenants: dict[str, TenantSpec], revision: int, source: str) -> None:
        unchanged = revision == self.applied.revision and tenants == self.applied.tenants
        if unchanged and time.monotonic() - self._repaired < REPAIR_S:
            return
        self._repaired = time.monotonic()
        try:
            changes = self.reconciler.apply(tenants)
        except (EdgesimError, NetlinkError, OSError) as err:
            log(f"applying revision {revision} failed, will retry: {err}")
            return
        if changes:
            log(f"revision {revision} from the {source}: " + "; ".join(changes))
        if revision != self.applied.revision or source != self.applied.source:
            self.applied = Applied(revision, source, time.time(), dict(tenants))
            if source == "store":
                self._save_cache()

    def _ensure_watch(self, revision: int) -> None:
        if self._cancel_watch is not None:
            return
        try:
            self._cancel_watch = self.store.watch(revision + 1, self.wake.set)
        except StoreError as err:
            log(f"cannot watch the store, reading it every {POLL_S:.0f} s: {err}")

    def _stop_watch(self) -> None:
        if self._cancel_watch is not None:
            self._cancel_watch()
            self._cancel_watch = None

    def _load_cache(self) -> None:
        try:
            data = json.loads(self.cache.read_text())
            tenants = {t["name"]: TenantSpec.model_validate(t) for t in data["tenants"]}
        except (OSError, ValueError, KeyError):
            return
        log(f"applying the cached config of revision {data.get('revision')} until the store answers")
        self._apply(tenants, int(data.get("revision", 0)), "cache")

    def _save_cache(self) -> None:
        data = {
            "revision": self.applied.revision,
            "tenants": [t.model_dump(mode="json") for t in self.applied.tenants.values()],
        }
        atomic_write_json(self.cache, data)

    def status(self) -> dict[str, Any]:
        """What the status page shows: store, applied config, GRE and firewall counters per tenant."""
        names = {t.id: name for name, t in self.applied.tenants.items()}
        gre: dict[str, dict[str, list[int]]] = {}
        for (tenant, verdict), (packets, size) in self.reconciler.gre.counters().items():
            gre.setdefault(names.get(tenant, str(tenant)), {})[verdict] = [packets, size]
        firewall = {
            name: nft.counters(tenant_netns(self.context.lab, self.context.edge, name))
            for name in self.applied.tenants
        }
        return {
            "edge": self.context.edge,
            "store": {"url": self.store.url, "reachable": self.reachable, "error": self.store_error},
            "applied": {
                "revision": self.applied.revision,
                "source": self.applied.source,
                "at": self.applied.at,
                "tenants": {name: t.model_dump(mode="json") for name, t in self.applied.tenants.items()},
            },
            "invalid": self.invalid,
            "gre": gre,
            "firewall": firewall,
        }


def metric_sources(agent: Agent) -> list[Source]:
    """What the agent exports on /metrics: its tenants' GRE and firewall counters, and the edge's BGP."""
    state = LabState(agent.context.lab)
    plan = state.plan()
    sources = [metrics.source(agent.status)]
    if plan is not None and agent.context.edge in plan.nodes:
        sources.append(routing_metrics.source(state.dir, plan.nodes[agent.context.edge]))
    return sources


def _serve(agent: Agent, listen: str) -> ThreadingHTTPServer:
    """Serve /status and /metrics on listen (address:port) from a thread."""

    registry = exporter.registry(metric_sources(agent))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/status":
                body, kind = json.dumps(agent.status(), indent=2).encode(), "application/json"
            elif self.path == "/metrics":
                body, kind = exporter.exposition(registry), exporter.CONTENT_TYPE
            else:
                self.send_error(404, "try /status or /metrics")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up before the answer: nothing to tell it

        def log_message(self, format: str, *args: object) -> None:
            pass

    host, port = listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"serving status on http://{listen}/status")
    return server


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the arguments the plan gives, then reconcile until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True, type=guard.lab_argument)
    parser.add_argument("--edge", required=True, type=guard.node_argument)
    parser.add_argument("--store", required=True, help="etcd client URL, e.g. http://198.18.1.0:2379")
    parser.add_argument("--listen", required=True, help="address:port of the status page")
    parser.add_argument("--uplink", required=True, help="the edge's interface towards the router")
    parser.add_argument("--gre-endpoint", required=True, type=IPv4Address)
    parser.add_argument("--veth-pool", required=True, type=IPv4Network)
    parser.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="PREFIX=REASON",
        help="a range tenants' traffic never reaches (infrastructure | anycast | tenant); repeatable",
    )
    args = parser.parse_args(argv)
    state = LabState(args.lab)
    try:
        # One agent per edge: two would race each other building and removing the same tenants.
        locks.acquire(state.dir / f"tenants-{args.edge}.lock")
    except locks.Busy as busy:
        log(f"{args.edge}: an agent runs already ({busy.holder}); not starting a second")
        return 1
    refused = {IPv4Network(net): reason for net, reason in (item.split("=", 1) for item in args.refuse)}
    context = EdgeContext(
        args.lab,
        args.edge,
        args.uplink,
        args.gre_endpoint,
        args.veth_pool,
        namespaces.lab_mount_ns(),
        refused,
    )
    agent = Agent(
        context,
        Store(args.store, timeout=STORE_TIMEOUT_S),
        state.dir / f"tenants-{args.edge}.json",
    )
    signal.signal(signal.SIGTERM, lambda *_: (agent.stop.set(), agent.wake.set()))
    signal.signal(signal.SIGINT, lambda *_: (agent.stop.set(), agent.wake.set()))
    log(f"{args.edge}: GRE endpoint {args.gre_endpoint}, store {args.store}")
    agent.run(args.listen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
