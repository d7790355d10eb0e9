"""The load balancer inside an edge agent: loads the LB programs of the edge's BPF module, keeps their
maps equal to the lab's LB state (and to what the health checks see), reports counters."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.errors import EdgesimError, Problem
from edgesim.lb import layout, maps, store, table
from edgesim.lb.health import HealthChecker, Verdicts
from edgesim.lb.rings import SharedRings
from edgesim.mitigation import layout as ddos_layout
from edgesim.mitigation.maps import read_counters

LB_ENTRY = "xdp_lb"
BACKPLANE_ENTRY = "xdp_backplane"


class Balancer:
    """One edge's L4 load balancer; every map change goes through `reload` under one lock."""

    def __init__(self, bpf: Any, netns: str, edge: str, backplane: str, state_file: Path) -> None:
        self.bpf = bpf
        self.netns = netns
        self.edge = edge
        self.backplane = backplane
        self.state_file = state_file
        self.lock = threading.Lock()
        self.lb_fd = loader.load_xdp(bpf, LB_ENTRY)
        self.backplane_fd = loader.load_xdp(bpf, BACKPLANE_ENTRY)
        self.state = store.read(state_file)
        self.unhealthy: set[str] = set()
        self.health_round = 0  # the check round whose verdicts the applied table reflects
        self.applied: dict[str, Any] = {}
        self.buckets: table.Buckets | None = None  # the table applied last: the daisy chain's memory
        self.rings = SharedRings(state_file.parent)  # the lab's agents build each Maglev table once
        self.health: HealthChecker | None = None
        self.mode = ""

    def _ifindex(self) -> int:
        try:
            with namespaces.inside(self.netns):
                return socket.if_nametoindex(self.backplane)
        except OSError:
            raise EdgesimError(
                Problem(f"{self.netns}/{self.backplane}", "no such interface", "is the lab up?")
            ) from None

    def start(self, mode: str) -> None:
        """Fill the maps, put the LB behind the DoS program, attach the backplane program, start checks."""
        self.reload()
        self.bpf[b"chain"][ddos_layout.CHAIN_NEXT] = self.lb_fd
        self.mode = loader.attach_xdp(self.netns, self.backplane, self.backplane_fd, mode)
        targets = [(e.name, e.address) for e in self.state.edges]
        self.health = HealthChecker(
            self.edge, targets, store.HEALTH_PORT, self.state_file.parent, self._health_changed
        )
        self.health.start()

    def _health_changed(self, verdicts: Verdicts) -> None:
        with self.lock:
            changed = set(verdicts.unhealthy) != self.unhealthy
            self.unhealthy = set(verdicts.unhealthy)
            self.health_round = verdicts.since
            if changed:
                self._apply()
            else:
                self.applied["health_round"] = verdicts.since

    def reload(self) -> dict[str, Any]:
        """Re-read the lab's LB state and write the table it gives (with failing edges left out)."""
        with self.lock:
            self.state = store.read(self.state_file)
            return self._apply()

    def _apply(self) -> dict[str, Any]:
        state = self.state
        if self.edge not in state.names():
            raise EdgesimError(Problem(str(self.state_file), f"{self.edge} is not one of the LB's edges"))
        started = time.monotonic()
        buckets = table.buckets(state, self.unhealthy, self.edge, self.buckets, self.rings.build)
        maps.write_members(self.bpf, state)
        maps.write_table(self.bpf, buckets, state.enabled, state.names().index(self.edge), self._ifindex())
        self.buckets = buckets
        self.applied = {
            "generation": state.generation,
            "enabled": state.enabled,
            "unhealthy": sorted(self.unhealthy),
            "applied_at": time.time(),
            # The lab's check round whose verdicts this table reflects: tests count rounds, not seconds.
            "health_round": self.health_round,
            "apply_s": round(time.monotonic() - started, 4),
        }
        return dict(self.applied)

    def stats(self) -> dict[str, Any]:
        """Counters (local, forwarded, chained, received, bad encapsulation) and the table applied here."""
        with self.lock:
            counters = read_counters(self.bpf, layout.COUNTER_SLOTS)
            buckets = self._live_buckets()
            return {
                **self.applied,
                "counters": {name: counters[slot][0] for slot, name in layout.COUNTER_SLOTS.items()},
                "owners": buckets,
                "mode": self.mode,
                **self._health_view(),
            }

    def summary(self) -> dict[str, Any]:
        """The table applied and the lab's checks, without reading anything back from the maps (cheap:
        `up` asks every agent a few times a second until they agree)."""
        with self.lock:
            return {**self.applied, **self._health_view()}

    def _health_view(self) -> dict[str, Any]:
        """The lab's checks as the verdicts file says now: rounds, who checks, edges never answered yet."""
        verdicts = self.health.verdicts() if self.health is not None else None
        if verdicts is None:
            return {"health_rounds": 0, "health_checker": "", "health_unanswered": self.state.names()}
        answered = set(verdicts.answered)
        return {
            "health_rounds": verdicts.round,
            "health_checker": verdicts.checker,
            "health_unanswered": [name for name in self.state.names() if name not in answered],
        }

    def counters(self) -> dict[str, Any]:
        """The counters and the table generation applied, without reading the table back (for metrics)."""
        with self.lock:
            counters = read_counters(self.bpf, layout.COUNTER_SLOTS)
            named = {name: counters[slot][0] for slot, name in layout.COUNTER_SLOTS.items()}
            return {**self.applied, "counters": named}

    def _live_buckets(self) -> dict[str, int]:
        """How many buckets of the live table each edge owns (read back from the map, not recomputed)."""
        config = maps.read_config(self.bpf)
        ring = self.bpf[b"lb_ring"]
        names = self.state.names()
        counts = dict.fromkeys(names, 0)
        base = config.active * layout.RING_SIZE
        for key, value in ring.items_lookup_batch():
            if base <= key < base + layout.RING_SIZE:
                counts[names[value.first]] += 1
        return counts

    def stop(self) -> None:
        """Stop the checks and detach the backplane program."""
        if self.health is not None:
            self.health.stop()
        loader.detach_xdp(self.netns, self.backplane)
