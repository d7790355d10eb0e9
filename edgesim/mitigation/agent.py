"""The per-edge XDP agent: loads the DoS program on the uplink, keeps its maps equal to the lab's rule set,
and answers `reload`, `stats` and `status` on a unix socket. Runs inside the edge, under the lab supervisor:

    python -m edgesim.mitigation.agent --netns pop-edge1 --uplink eth-router --rules R --socket S
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from edgesim import agentsocket, locks
from edgesim.bpf import loader
from edgesim.errors import EdgesimError
from edgesim.lb import metrics as lb_metrics
from edgesim.lb.balancer import Balancer
from edgesim.metrics import exporter, kernel
from edgesim.metrics.families import Source
from edgesim.mitigation import l7table, layout, maps, metrics, nftrules, store, synproxy
from edgesim.mitigation.rules import Blocklist, RuleSet, SynCookie

# The edge's XDP chain (DoS and L4 LB in one bcc module, sharing their maps).
PROGRAM = Path("xdp_edge.c")
ENTRY = "xdp_ddos"


class Agent:
    """Owns the loaded program; every change to its maps goes through `reload` under one lock."""

    def __init__(
        self,
        netns: str,
        uplink: str,
        rules: Path,
        balancer: tuple[str, str, Path] | None = None,
        control_peers: Sequence[tuple[IPv4Address, IPv4Address]] = (),
    ):
        self.netns = netns
        self.uplink = uplink
        self.rules_file = rules
        self.lock = threading.Lock()
        self.bpf = loader.compile_program(PROGRAM)
        self.prog_fd = loader.load_xdp(self.bpf, ENTRY)
        self.rule_set = RuleSet()
        self.synproxy_applied = False
        self.mode = ""
        # The L4 load balancer (edge name, backplane interface, LB state file) shares this program's maps.
        self.balancer = Balancer(self.bpf, netns, *balancer) if balancer else None
        self.control_peers = list(control_peers)

    def start(self, mode: str) -> None:
        """Apply the rules (and the LB table) first, then attach: never a program without its maps."""
        maps.set_control_peers(self.bpf, self.control_peers)
        self.reload()
        if self.balancer is not None:
            self.balancer.start(mode)
        self.mode = loader.attach_xdp(self.netns, self.uplink, self.prog_fd, mode)

    def reload(self) -> dict[str, Any]:
        """Re-read the rule set and bring the maps (and the synproxy table) to it by diff."""
        with self.lock:
            new = store.read(self.rules_file)
            old_labels = {r.slot: r.rule.label() for r in self.rule_set.rules}
            taken = [r.slot for r in new.rules if old_labels.get(r.slot) != r.rule.label()]
            maps.clear_counters(self.bpf, taken)
            changes = maps.apply(self.bpf, maps.contents_for(new))
            # Only a change of the protected VIP:ports touches nftables: replacing the synproxy table under
            # handshakes in progress would break them.
            if _protected(new) != _protected(self.rule_set) or not self.synproxy_applied:
                synproxy.install(_protected(new))
                self.synproxy_applied = True
            # The layer-7 rules live in nftables: brought to the set by diff, so what stays keeps its state.
            changes += l7table.apply(new)
            self.rule_set = new
            return {"changes": changes, "rules": len(new.rules)}

    def stats(self) -> dict[str, Any]:
        """Counters per rule and per built-in verdict."""
        with self.lock:
            slots = [r.slot for r in self.rule_set.rules]
            counters = maps.read_counters(self.bpf, [*layout.VERDICT_SLOTS, *slots])
            if nftrules.l7_rules(self.rule_set):
                nft_counters = l7table.counters()
                for r in nftrules.l7_rules(self.rule_set):
                    counters[r.slot] = nft_counters.get(nftrules.counter_name(r.slot), (0, 0))
            return {
                "verdicts": {name: counters[slot] for slot, name in layout.VERDICT_SLOTS.items()},
                "rules": [
                    {
                        "name": r.rule.label(),
                        "kind": r.rule.kind,
                        "slot": r.slot,
                        "packets": counters[r.slot][0],
                        "bytes": counters[r.slot][1],
                    }
                    for r in self.rule_set.rules
                ],
                "blocklists": {
                    r.rule.set_name: l7table.members(r.rule.set_name)
                    for r in self.rule_set.rules
                    if isinstance(r.rule, Blocklist)
                },
            }

    def status(self) -> dict[str, Any]:
        """What is attached where."""
        info = loader.xdp_info(self.netns, self.uplink) or {}
        return {"uplink": self.uplink, "mode": self.mode, "prog_id": info.get("prog_id"), "pid": os.getpid()}

    def lb_reload(self) -> dict[str, Any]:
        """Apply the lab's LB state now (drain, undrain, on/off)."""
        if self.balancer is None:
            raise EdgesimError("this edge has no L4 load balancer (the lab has no backplane)")
        return self.balancer.reload()

    def lb_stats(self) -> dict[str, Any]:
        """The LB's counters and the table it applied."""
        if self.balancer is None:
            raise EdgesimError("this edge has no L4 load balancer (the lab has no backplane)")
        return self.balancer.stats()

    def lb_summary(self) -> dict[str, Any]:
        """The table the LB applied and the lab's health checks, without its counters or live table."""
        if self.balancer is None:
            raise EdgesimError("this edge has no L4 load balancer (the lab has no backplane)")
        return self.balancer.summary()

    def metric_sources(self) -> list[Source]:
        """What the agent serves on /metrics: the DoS and LB maps it owns, and the edge's kernel counters."""
        sources = [metrics.source(self.stats), kernel.source(self.netns)]
        if self.balancer is not None:
            sources.append(lb_metrics.source(self.balancer.counters))
        return sources

    def stop(self) -> None:
        """Detach and remove the synproxy and L7 tables; the maps go with the process."""
        loader.detach_xdp(self.netns, self.uplink)
        if self.balancer is not None:
            self.balancer.stop()
        synproxy.remove()
        l7table.remove()


def _protected(rule_set: RuleSet) -> list[tuple[IPv4Address, int]]:
    """The VIP:ports a rule set protects with SYN cookies."""
    return [(IPv4Address(r.rule.vip), r.rule.port) for r in rule_set.rules if isinstance(r.rule, SynCookie)]


def serve(agent: Agent, path: Path) -> socketserver.UnixStreamServer:
    """A unix-socket server answering one JSON request per connection."""
    handlers = {
        "reload": agent.reload,
        "stats": agent.stats,
        "status": agent.status,
        "lb-reload": agent.lb_reload,
        "lb-stats": agent.lb_stats,
        "lb-summary": agent.lb_summary,
    }

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline())
                answer: dict[str, Any] = {"ok": True, **handlers[request["op"]]()}
            except (KeyError, ValueError) as err:
                answer = {"ok": False, "error": f"bad request: {err}"}
            except EdgesimError as err:
                answer = {"ok": False, "error": str(err)}
            try:
                self.wfile.write(json.dumps(answer).encode() + b"\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up before the answer (a timed-out request): nothing to tell it

    path.unlink(missing_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    """Load, attach, serve until SIGTERM, detach."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="the edge's namespace (the agent runs inside it)")
    parser.add_argument("--uplink", required=True, help="interface facing the router")
    parser.add_argument("--rules", required=True, type=Path, help="the lab's rule set (JSON)")
    parser.add_argument("--socket", required=True, type=Path, help="control socket path")
    parser.add_argument("--mode", default="auto", choices=["auto", "native", "generic"])
    parser.add_argument("--edge", help="this edge's name (with --backplane and --lb: run the L4 LB)")
    parser.add_argument("--backplane", help="the edge's backplane interface")
    parser.add_argument("--lb", type=Path, help="the lab's LB state (JSON)")
    parser.add_argument("--metrics", help="address:port to serve Prometheus /metrics on")
    parser.add_argument(
        "--control-peer",
        action="append",
        default=[],
        metavar="ROUTER=EDGE",
        help="a BGP/BFD session on the uplink (addresses); its packets pass before every rule; repeatable",
    )
    args = parser.parse_args(argv)
    balancer = (args.edge, args.backplane, args.lb) if args.edge and args.backplane and args.lb else None
    peers = [(IPv4Address(a), IPv4Address(b)) for a, b in (item.split("=", 1) for item in args.control_peer)]
    try:
        # One agent per edge: a second would attach a second program and fight over the maps.
        locks.acquire(args.socket.with_suffix(".lock"))
    except locks.Busy as busy:
        print(
            f"xdp agent: already running for {args.socket} ({busy.holder}); not starting a second",
            file=sys.stderr,
        )
        return 1
    try:
        agent = Agent(args.netns, args.uplink, args.rules, balancer, peers)
        agent.start(args.mode)
    except EdgesimError as err:
        print(f"xdp agent: {err}", file=sys.stderr, flush=True)
        return 1
    server = serve(agent, args.socket)
    if args.metrics:
        exporter.serve(args.metrics, agent.metric_sources())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(
        f"xdp agent: {ENTRY} on {args.uplink} in {agent.mode} mode, {len(agent.rule_set.rules)} rules",
        flush=True,
    )
    if agent.balancer is not None:
        print(
            f"xdp agent: L4 LB, xdp_backplane on {args.backplane} in {agent.balancer.mode} mode", flush=True
        )
    stop.wait()
    server.shutdown()
    args.socket.unlink(missing_ok=True)
    agent.stop()
    return 0


def request(path: Path, op: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to an agent and return its answer (raises EdgesimError when it cannot)."""
    return agentsocket.request(path, "XDP agent", "is the lab up? `invoke status`", op, timeout)


if __name__ == "__main__":
    sys.exit(main())
