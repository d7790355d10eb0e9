"""DoS mitigation benchmark: every figure measured side by side in one run on this machine.

1. Per-packet cost of the DoS program (BPF_PROG_TEST_RUN, ns/packet) with 1, 1,000 and 100,000
   source-prefix rules of one length, and 100,000 spread over 17 lengths, next to a program that only
   returns XDP_DROP.
2. Per-packet CPU on one edge: a paced DNS reflection flood sent from the router's namespace straight into
   the edge (a veth of the bench's own, so no router forwarding is in the figure), dropped by the DoS
   program in XDP, by an nftables rule at netdev ingress, or by nothing (the packets reach the stack); sent
   by trafgen (socket buffers the sender allocated) and as bare XDP frames (xdp_inject.c in
   BPF_PROG_TEST_RUN's live-frames mode: buffers with no socket buffer, as a NIC's driver gets them). On a
   veth the receiver's work runs in the sender's context (softirq at the end of each send), so the figure is
   the sender's CPU time per packet less the same sender's with the edge's end down (nothing received),
   next to BPF's own run-time statistics of the XDP program and the machine's softirq time per packet.
3. CPU time per million packets of one paced UDP reflection flood from the attacker through the router,
   dropped three ways on every edge (the machine's softirq time: router forwarding included).
4. Legitimate HTTP (success rate, p99 latency) with no attack, then under each attack with mitigation on,
   then with mitigation off (no XDP rules).
5. Service capacity: the edges limited the way a small real server is (SYN backlog 256, no SYN cookies from
   the kernel, the DNS server's receive buffer, 8 MiB), legitimate HTTP under a SYN flood and legitimate
   DNS under UDP query floods, with mitigation (XDP rules, the DNS socket filter) on and off.

Run as root: `.venv/bin/python bench/ddos.py` (about ten minutes; it brings up and removes its own lab,
`--lab`, default dbench). `--only PART` runs one part.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/dns.py sits next to this file and dnspython's package is `dns`: run as a script, this directory comes
# first on the import path and would shadow dnspython (which the DNS probe uses). Drop it before any import.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from rich.console import Console
from rich.table import Table
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim import lab as lab_api
from edgesim import namespaces, runtime
from edgesim.bpf import loader, runstats, testrun
from edgesim.dns import control as dns_control
from edgesim.dns.section import DnsLimit
from edgesim.mitigation import control, maps, store
from edgesim.mitigation.rules import RULE_ADAPTER, DropSrc, RuleSet, build_rule_set
from edgesim.plan import LabPlan, NodePlan
from edgesim.traffic import attacks, dns_probe, streams
from edgesim.traffic.http_probe import ProbeReport, probe_from_node

console = Console(width=150)


# --- 1. per-packet cost of the program ---------------------------------------------------------------------


def ns_per_packet(fd: int, packet: bytes, repeat: int) -> float:
    """Average run time of the program on one packet, in ns (best of three to dampen noise)."""
    return min(testrun.run(fd, packet, repeat).duration_ns for _ in range(3))


def spread_prefixes(count: int) -> tuple[list[IPv4Network], IPv4Address]:
    """`count` prefixes over the 17 lengths /16-/32, and a source only the last /16 covers.

    The /16s lie in 100.112.0.0/12, every longer prefix in 100.96.0.0/12: a source in 100.127.0.0/16 is
    probed at all 16 longer lengths first (the worst case for this many lengths).
    """
    wide = list(IPv4Network("100.112.0.0/12").subnets(new_prefix=16))
    chosen = list(wide)
    lengths = list(range(17, 33))
    for index, length in enumerate(lengths):
        quota = (count - len(chosen)) // (len(lengths) - index)
        available = 1 << (length - 12)
        step = max(1, available // quota) if quota else available
        subnets = IPv4Network("100.96.0.0/12").subnets(new_prefix=length)
        chosen += [net for i, net in enumerate(subnets) if i % step == 0][:quota]
    return chosen, IPv4Address("100.127.200.1")


def bench_program_cost(repeat: int) -> Table:
    """Table 1: ns/packet of the DoS program by source-prefix rule count and lengths, next to XDP_DROP."""
    table = Table(title=f"per-packet cost, BPF_PROG_TEST_RUN ({repeat:,} runs each, best of three)")
    for column in (
        "program",
        "source-prefix rules",
        "lengths",
        "packet",
        "verdict",
        "ns/packet",
        "vs 1 rule",
    ):
        table.add_column(column, justify="right")
    dropper = loader.compile_program(Path("xdp_drop.c"))
    fd = loader.load_xdp(dropper, "xdp_drop")
    legit = raw(
        Ether() / IP(src="100.64.0.1", dst="198.51.100.10") / UDP(sport=40000, dport=443) / Raw(b"x" * 18)
    )
    floor = ns_per_packet(fd, legit, repeat)
    table.add_row("xdp_drop (floor)", "-", "-", "UDP", "XDP_DROP", f"{floor:.1f}", "")
    dropper.cleanup()
    # Prefixes spread over 100.64.0.0/10, none covering the legitimate client; the last one is hit.
    prefixes = list(IPv4Network("100.96.0.0/11").subnets(new_prefix=28))
    cases: list[tuple[str, list[IPv4Network], IPv4Address]] = []
    for count in (1, 1_000, 100_000):
        chosen = prefixes[:: max(1, len(prefixes) // count)][:count]
        cases.append(("1 (/28)", chosen, IPv4Address(int(chosen[-1].network_address) + 1)))
    spread, deepest = spread_prefixes(100_000)
    cases.append(("17 (/16-/32)", spread, deepest))
    first: dict[str, float] = {}
    for lengths, chosen, hit in cases:
        program = loader.compile_program(Path("xdp_edge.c"))
        prog_fd = loader.load_xdp(program, "xdp_ddos")
        rules = build_rule_set([DropSrc(kind="drop_src", prefix=p) for p in chosen])
        maps.apply(program, maps.contents_for(rules))
        attack = raw(
            Ether() / IP(src=str(hit), dst="198.51.100.10") / UDP(sport=53, dport=40000) / Raw(b"x" * 18)
        )
        for name, packet in (("legitimate UDP", legit), ("matching source", attack)):
            verdict = testrun.run(prog_fd, packet).verdict
            cost = ns_per_packet(prog_fd, packet, repeat)
            first.setdefault(name, cost)
            table.add_row(
                "xdp_ddos",
                f"{len(chosen):,}",
                lengths,
                name,
                verdict,
                f"{cost:.1f}",
                f"{cost / first[name]:.2f}x",
            )
        program.cleanup()
    return table


# --- 2. per-packet CPU on one edge ----------------------------------------------------------------------

# The bench's own veth: its router end, and its end inside the edge.
INJECT_ROUTER_END, INJECT_EDGE_END = "dbench-inj", "dbench-in"


def cpu_seconds() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of all cores since boot, from /proc/stat.

    Receiving runs in softirq (veth NAPI, XDP, nftables, the IP stack), so the softirq share is where
    the three ways of dropping differ; the sender's own work (trafgen pacing in a busy loop) is not in it.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy / 100.0, softirq / 100.0  # USER_HZ


def _nft(netns: str, script: str) -> None:
    import nftables

    with namespaces.inside(netns):
        nft = nftables.Nftables()
        rc, _, err = nft.cmd(script)
        assert rc == 0, err


def nft_drop_table(device: str) -> str:
    """The nftables equivalent of the XDP rules the flood meets (the lab's reflection drops): UDP from
    ports 53 and 123 dropped at netdev ingress of `device`."""
    return (
        "table netdev dbench {\n  chain ingress {\n"
        f'    type filter hook ingress device "{device}" priority -500; policy accept;\n'
        "    udp sport { 53, 123 } drop\n  }\n}\n"
    )


def _link(plan: LabPlan, node: NodePlan, ifname: str) -> dict[str, int | str]:
    with runtime.backend(plan.lab).netlink(node) as ipr:
        (link,) = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])
        stats = link.get("IFLA_STATS64")
        return {"mac": link.get("IFLA_ADDRESS"), "rx": stats["rx_packets"]}


@contextmanager
def injector(plan: LabPlan, edge: NodePlan) -> Iterator[str]:
    """A veth from the router's namespace into the edge's (no address: frames only), removed afterwards;
    yields the MAC of its edge end."""
    router = plan.nodes_with_role("router")[0]
    with runtime.backend(plan.lab).netlink(router) as ipr:
        peer = {"ifname": INJECT_EDGE_END, "net_ns_fd": str(namespaces.NETNS_DIR / edge.netns)}
        ipr.link("add", ifname=INJECT_ROUTER_END, kind="veth", peer=peer)
        ipr.link("set", index=ipr.link_lookup(ifname=INJECT_ROUTER_END)[0], state="up")
    try:
        with runtime.backend(plan.lab).netlink(edge) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=INJECT_EDGE_END)[0], state="up")
        yield str(_link(plan, edge, INJECT_EDGE_END)["mac"])
    finally:
        with runtime.backend(plan.lab).netlink(router) as ipr:
            found = ipr.link_lookup(ifname=INJECT_ROUTER_END)
            if found:
                ipr.link("del", index=found[0])  # its peer in the edge goes with it


IDLE_S = 1.5


@dataclass
class Round:
    """One flood into the edge: packets the edge received, the sender's CPU seconds (on a veth the edge's
    receive work runs in the sender's context: softirq at the end of each send), and the machine's softirq
    seconds above its idle rate just before."""

    packets: int
    sender_s: float
    softirq_s: float


# A reflection "answer" as the frame generator sends it (trafgen varies the source and ports per packet).
def reflection_frame(mac: str, vip: str) -> bytes:
    """One DNS reflection frame to the VIP, for the XDP-frame generator."""
    return raw(
        Ether(dst=mac, src="02:00:00:00:00:01")
        / IP(src="100.100.7.7", dst=vip)
        / UDP(sport=53, dport=40000)
        / Raw(b"A" * 64)
    )


@dataclass
class FrameGenerator:
    """xdp_inject.c run in live-frames mode: frames redirected into the edge as a NIC's driver gets them."""

    netns: str  # the router's: the frames start there (on its loopback's receive queue)
    fd: int
    frame: bytes

    def send(self, pps: int, seconds: float) -> int:
        """Send at `pps` for `seconds` (batches on a 5 ms schedule); returns the frames sent."""
        sent, started = 0, time.monotonic()
        with namespaces.inside(self.netns):
            while (elapsed := time.monotonic() - started) < seconds:
                due = min(int(elapsed * pps) - sent, 65_536)
                if due > 0:
                    testrun.run_live(self.fd, self.frame, due)
                    sent += due
                else:
                    time.sleep(0.005)
        return sent


@contextmanager
def frame_generator(plan: LabPlan, mac: str) -> Iterator[FrameGenerator]:
    """The generator, aimed at the bench's veth (its router end)."""
    router = plan.nodes_with_role("router")[0]
    program = loader.compile_program(Path("xdp_inject.c"))
    try:
        fd = loader.load_xdp(program, "xdp_inject")
        devices = program[b"inject_to"]
        with runtime.backend(plan.lab).netlink(router) as ipr:
            ifindex = ipr.link_lookup(ifname=INJECT_ROUTER_END)[0]
        with namespaces.inside(router.netns):  # a device map resolves the ifindex in the writer's namespace
            devices[devices.Key(0)] = devices.Leaf(ifindex)
        yield FrameGenerator(router.netns, fd, reflection_frame(mac, plan.vips[0]))
    finally:
        program.cleanup()


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (trafgen, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def flood_round(plan: LabPlan, edge: NodePlan, send: Callable[[], object]) -> Round:
    """One flood into the edge: what the edge received, and what it cost the sender and the machine."""
    _, idle_before = cpu_seconds()
    time.sleep(IDLE_S)
    _, idle_after = cpu_seconds()
    idle_rate = (idle_after - idle_before) / IDLE_S
    link_before = _link(plan, edge, INJECT_EDGE_END)
    _, soft_before = cpu_seconds()
    started = time.monotonic()
    own, children = time.thread_time(), children_cpu_s()
    send()
    sender = time.thread_time() - own + children_cpu_s() - children
    elapsed = time.monotonic() - started
    _, soft_after = cpu_seconds()
    link_after = _link(plan, edge, INJECT_EDGE_END)
    # What the edge took in (a veth counts what reached it, whatever XDP then did with it).
    packets = int(link_after["rx"]) - int(link_before["rx"])
    return Round(packets, sender, soft_after - soft_before - idle_rate * elapsed)


@contextmanager
def edge_end_down(plan: LabPlan, edge: NodePlan) -> Iterator[None]:
    """The edge's end of the bench's veth down: the sender's frames are dropped as they are sent, so the
    sender's CPU is its own alone (the baseline that the other rounds' sender CPU is taken less)."""
    with runtime.backend(plan.lab).netlink(edge) as ipr:
        index = ipr.link_lookup(ifname=INJECT_EDGE_END)[0]
        ipr.link("set", index=index, state="down")
    try:
        yield
    finally:
        with runtime.backend(plan.lab).netlink(edge) as ipr:
            ipr.link("set", index=index, state="up")


VARIANTS = ("XDP (the DoS program)", "nftables netdev ingress", "nothing (reaches the stack)")


@contextmanager
def dropping(edge: NodePlan, variant: str, prog_fd: int) -> Iterator[None]:
    """The edge end of the bench's veth with the DoS program, the nftables rule, or nothing."""
    if variant == VARIANTS[0]:
        loader.attach_xdp(edge.netns, INJECT_EDGE_END, prog_fd, "native")
    elif variant == VARIANTS[1]:
        _nft(edge.netns, nft_drop_table(INJECT_EDGE_END))
    try:
        yield
    finally:
        loader.detach_xdp(edge.netns, INJECT_EDGE_END)
        if variant == VARIANTS[1]:
            _nft(edge.netns, "delete table netdev dbench")


def bench_edge_cpu(plan: LabPlan, pps: int, seconds: float, rounds: int) -> Table:
    """Table 2: per-packet CPU on one edge for the three ways of dropping, the flood injected at the edge,
    as bare XDP frames (what a NIC's driver gets) and from trafgen (socket buffers the sender built)."""
    edge = plan.nodes_with_role("edge")[0]
    router = plan.nodes_with_role("router")[0].name
    rules = store.read(store.rules_path(plan.lab))
    table = Table(
        title=f"per-packet CPU on {edge.name}: DNS reflection injected straight into the edge at {pps:,} pps "
        f"for {seconds:g} s, {rounds} rounds each (median, range over rounds)"
    )
    for column in (
        "sent as",
        "dropped by",
        "packets",
        "edge ns/packet",
        "range",
        "vs XDP",
        "measured as",
        "XDP program ns/packet (BPF stats)",
    ):
        table.add_column(column, justify="right")
    program = loader.compile_program(Path("xdp_edge.c"))
    prog_fd = loader.load_xdp(program, "xdp_ddos")
    maps.apply(program, maps.contents_for(rules))
    nominal = int(pps * seconds)
    try:
        with injector(plan, edge) as mac, frame_generator(plan, mac) as frames:
            # GRO on, so that the veth runs its own NAPI without XDP too: bare frames need it to arrive,
            # and it builds their socket buffers as a NIC's driver would.
            runtime.backend(plan.lab).run(edge, ["ethtool", "-K", INJECT_EDGE_END, "gro", "on"], check=True)
            senders: dict[str, Callable[[], object]] = {
                "XDP frames": lambda: frames.send(pps, seconds),
                "trafgen (skb)": lambda: attacks.inject(
                    plan, router, INJECT_ROUTER_END, mac, "udp-reflection", pps, seconds
                ),
            }
            for sent_as, send in senders.items():
                baseline: list[float] = []
                results: dict[str, list[Round]] = {v: [] for v in VARIANTS}
                for _ in range(rounds):
                    with edge_end_down(plan, edge):
                        baseline.append(flood_round(plan, edge, send).sender_s / nominal)
                    for variant in VARIANTS:
                        with dropping(edge, variant, prog_fd):
                            results[variant].append(flood_round(plan, edge, send))
                # The program's own time, with the kernel's run-time statistics on (they cost a little per
                # run, so the rounds above ran without them).
                with dropping(edge, VARIANTS[0], prog_fd), runstats.collecting():
                    before = runstats.read(prog_fd)
                    flood_round(plan, edge, send)
                    in_program = runstats.read(prog_fd) - before
                if sent_as == "XDP frames":
                    # Exact: the generator thread's own CPU time, less what it costs with nothing received.
                    alone = statistics.median(baseline)
                    per_packet = {
                        v: [(r.sender_s / r.packets - alone) * 1e9 for r in rs if r.packets]
                        for v, rs in results.items()
                    }
                    how = f"sender CPU less its own ({alone * 1e9:.0f})"
                else:
                    # trafgen paces in a busy loop, so its own CPU says nothing: the machine's softirq time
                    # less idle (sampled by the 250 Hz tick; noisy on a shared machine).
                    per_packet = {
                        v: [r.softirq_s / r.packets * 1e9 for r in rs if r.packets]
                        for v, rs in results.items()
                    }
                    how = "machine softirq less idle"
                _rows(
                    table,
                    sent_as,
                    per_packet,
                    {v: sum(r.packets for r in rs) for v, rs in results.items()},
                    how,
                    in_program,
                )
    finally:
        program.cleanup()
    return table


def _rows(
    table: Table,
    sent_as: str,
    per_packet: dict[str, list[float]],
    packets: dict[str, int],
    how: str,
    in_program: runstats.RunStats,
) -> None:
    """One row per way of dropping, with its ratio to XDP."""
    xdp = statistics.median(per_packet[VARIANTS[0]])
    for variant in VARIANTS:
        values = per_packet[variant]
        median = statistics.median(values)
        table.add_row(
            sent_as,
            variant,
            f"{packets[variant]:,}",
            f"{median:.0f}",
            f"{min(values):.0f}-{max(values):.0f}",
            f"{median / xdp:.2f}x",
            how,
            f"{in_program.ns_per_run:.0f} ({in_program.runs:,} runs)" if variant == VARIANTS[0] else "-",
        )


# --- 3. CPU per million packets through the router --------------------------------------------------------


def nft_uplinks(plan: LabPlan, add: bool) -> None:
    """The nftables equivalent of the XDP rule on every edge's uplink (added or removed)."""
    for node in plan.nodes_with_role("edge"):
        assert node.uplink is not None
        _nft(node.netns, nft_drop_table(node.uplink) if add else "delete table netdev dbench\n")


def bench_cpu(plan: LabPlan, pps: int, seconds: float) -> Table:
    """Table 3: CPU per million packets of the same paced flood, dropped three ways, router included."""
    table = Table(
        title=f"CPU time per million packets, udp-reflection paced at {pps:,} pps for {seconds:g} s "
        "(attacker -> router -> 4 edges; the whole machine's softirq)"
    )
    for column in ("dropped by", "packets", "busy CPU s", "softirq CPU s", "softirq s / Mpkt", "vs XDP"):
        table.add_column(column, justify="right")
    rules = store.read(store.rules_path(plan.lab))
    results = []
    for variant in ("XDP", "nftables netdev ingress", "nothing (reaches the stack)"):
        store.write(store.rules_path(plan.lab), rules if variant == "XDP" else RuleSet())
        control.reload_all(plan.lab)
        if variant.startswith("nftables"):
            nft_uplinks(plan, add=True)
        time.sleep(0.5)
        busy_before, soft_before = cpu_seconds()
        try:
            report = attacks.launch(plan, "udp-reflection", pps, seconds)
        finally:
            if variant.startswith("nftables"):
                nft_uplinks(plan, add=False)
        busy_after, soft_after = cpu_seconds()
        results.append((variant, report.packets, busy_after - busy_before, soft_after - soft_before))
    store.write(store.rules_path(plan.lab), rules)
    control.reload_all(plan.lab)
    xdp_rate = results[0][3] / results[0][1] * 1e6
    for variant, packets, busy, soft in results:
        per_million = soft / packets * 1e6
        table.add_row(
            variant,
            f"{packets:,}",
            f"{busy:.2f}",
            f"{soft:.2f}",
            f"{per_million:.2f}",
            f"{per_million / xdp_rate:.2f}x",
        )
    return table


# --- 4. legitimate HTTP under each attack -------------------------------------------------------------------


def legit_under(plan: LabPlan, kind: str | None, seconds: float, requests: int) -> tuple[ProbeReport, float]:
    """Client load during an attack (or none); returns the load report and the attack's packet rate."""
    result: list[attacks.AttackReport] = []
    flood = None
    if kind:
        flood = threading.Thread(target=lambda: result.append(attacks.launch(plan, kind, 0, seconds)))
        flood.start()
        time.sleep(1.0)
    report = probe_from_node(plan.lab, "client1", f"{plan.vips[0]}:80", requests, 32, hold=False, timeout=3.0)
    if flood:
        flood.join()
    return report, (result[0].pps if result else 0.0)


def bench_legit(plan: LabPlan, requests: int, seconds: float) -> Table:
    """Table 4: legitimate success and p99 with no attack, and each attack with mitigation on and off."""
    table = Table(title=f"legitimate HTTP from client1 ({requests} requests, one connection each)")
    for column in ("attack", "mitigation", "attack pps", "success", "p99 ms"):
        table.add_column(column, justify="right")
    report, _ = legit_under(plan, None, seconds, requests)
    table.add_row("none", "-", "0", f"{report.success_rate:.2%}", f"{report.latency_ms(0.99):.1f}")
    rules = store.read(store.rules_path(plan.lab))
    for kind in attacks.ATTACKS:
        for mitigation in ("on", "off"):
            store.write(store.rules_path(plan.lab), rules if mitigation == "on" else RuleSet())
            control.reload_all(plan.lab)
            report, pps = legit_under(plan, kind, seconds, requests)
            table.add_row(
                kind,
                mitigation,
                f"{pps:,.0f}",
                f"{report.success_rate:.2%}",
                f"{report.latency_ms(0.99):.1f}",
            )
    store.write(store.rules_path(plan.lab), rules)
    control.reload_all(plan.lab)
    return table


# --- 5. service capacity: a small server, protected and not ----------------------------------------------

# What every edge gets for this part: a SYN backlog of a small server, and no remembered peers (the kernel
# lets a "proven" peer, one it has TCP metrics of, past a SYN queue three quarters full; client1 would be
# one after the first run, which no new visitor is). Set on this benchmark's lab only, restored after.
SMALL_SERVER = {"net.ipv4.tcp_max_syn_backlog": "256", "net.ipv4.tcp_no_metrics_save": "1"}
# The kernel's own SYN cookies are a mitigation too: off in both columns, so that "on" is XDP's alone and
# "off" is a server with nothing in front of it.
NO_KERNEL_COOKIES = {"net.ipv4.tcp_syncookies": "0"}
HTTP_RATE, HTTP_TIMEOUT_S = 150, 3.0
DNS_RATE, DNS_CLIENTS = 40.0, ("client1", "client2")


@dataclass(frozen=True)
class Legit:
    """What legitimate traffic measured: share answered, p99 of the answered, how many were sent."""

    sent: int
    success: float
    p99_ms: float


def set_edge_sysctls(plan: LabPlan, values: dict[str, str]) -> dict[str, str]:
    """Set sysctls in every edge's namespace; returns the values they had (from the first edge)."""
    edges = plan.nodes_with_role("edge")
    old = {key: namespaces.read_sysctl(edges[0].netns, key) for key in values}
    for edge in edges:
        for key, value in values.items():
            namespaces.write_sysctl(edge.netns, key, value)
    return old


def forget_peers(plan: LabPlan) -> None:
    """Flush every edge's TCP metrics, so that no client counts as a proven peer."""
    for edge in plan.nodes_with_role("edge"):
        runtime.backend(plan.lab).run(edge, ["ip", "tcp_metrics", "flush", "all"])


def http_stream(plan: LabPlan, seconds: float) -> Legit:
    """New HTTP connections from client1 at HTTP_RATE for `seconds` (each given HTTP_TIMEOUT_S)."""
    proc = streams.start(plan.nodes["client1"].netns, f"{plan.vips[0]}:80", HTTP_RATE, HTTP_TIMEOUT_S)
    time.sleep(seconds)
    report = streams.finish(proc)
    ok = sorted(r.latency_ms for r in report.requests if r.error is None)
    total = len(report.requests)
    return Legit(total, len(ok) / total if total else 1.0, _p99(ok))


def dns_queries(plan: LabPlan, seconds: float) -> Legit:
    """DNS queries from both clients at DNS_RATE each for `seconds`."""
    reports: list[dns_probe.DnsProbeReport] = []
    vip = plan.vips[0]

    def one(node: str) -> None:
        reports.append(dns_probe.query_from_node(plan, node, vip, "www.pop.example", vip, DNS_RATE, seconds))

    threads = [threading.Thread(target=one, args=(node,)) for node in DNS_CLIENTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = dns_probe.merged(reports)
    return Legit(merged.sent, merged.answered_rate, merged.latency_ms(0.99))


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def under_flood(
    plan: LabPlan, kind: str | None, pps: int, seconds: float, legit: Callable[[LabPlan, float], Legit]
) -> tuple[Legit, float]:
    """Legitimate traffic for `seconds` while a flood runs from a second before it until after its last
    request gave up; returns it and the flood's achieved rate."""
    sent: list[attacks.AttackReport] = []
    stop = threading.Event()
    flood = None
    if kind:
        bound = seconds + HTTP_TIMEOUT_S + 3.0
        flood = threading.Thread(
            target=lambda: sent.append(attacks.launch(plan, kind, pps, bound, None, stop))
        )
        flood.start()
        stop.wait(1.0)
    try:
        measured = legit(plan, seconds)
    finally:
        stop.set()
        if flood:
            flood.join()
    return measured, (sent[0].pps if sent else 0.0)


def mitigation(plan: LabPlan, on: bool, rules: RuleSet, dns_limit: DnsLimit | None) -> None:
    """Mitigation on (the lab's XDP rules, the DNS socket filter) or off (no XDP rules, the filter only
    counting)."""
    store.write(store.rules_path(plan.lab), rules if on else RuleSet())
    control.reload_all(plan.lab)
    if dns_limit is not None:
        dns_control.set_limit(plan.lab, DnsLimit(rate=dns_limit.rate, burst=dns_limit.burst, enabled=on))


def bench_capacity(plan: LabPlan, pps: int, seconds: float) -> Table:
    """Table 5: legitimate HTTP and DNS on edges of a small server's capacity, floods, mitigation on/off."""
    limits = ", ".join(f"{k.rsplit('.', 1)[1]}={v}" for k, v in {**SMALL_SERVER, **NO_KERNEL_COOKIES}.items())
    table = Table(
        title=f"service capacity: edges with {limits}; "
        f"floods paced at {pps:,} pps; HTTP {HTTP_RATE}/s new connections from client1 (give up after "
        f"{HTTP_TIMEOUT_S:g} s), DNS {DNS_RATE:g}/s from each of {' and '.join(DNS_CLIENTS)}, {seconds:g} s"
    )
    for column in (
        "attack",
        "legitimate",
        "mitigation",
        "attack pps",
        "sent",
        "success",
        "p99 ms",
        "p99 / no attack",
    ):
        table.add_column(column, justify="right")
    rules = store.read(store.rules_path(plan.lab))
    dns_limit = dns_control.current_limit(plan.lab) if plan.dns is not None else None
    old = set_edge_sysctls(plan, {**SMALL_SERVER, **NO_KERNEL_COOKIES})
    rows: list[tuple[str | None, str, Callable[[LabPlan, float], Legit]]] = [
        (None, "HTTP", http_stream),
        (None, "DNS", dns_queries),
        # "on" before "off": without cookies a SYN flood leaves the listeners' SYN queues full of half-open
        # spoofed connections for a minute (the SYN-ACK retries), which would refuse the next run.
        ("syn-flood", "HTTP", http_stream),
        ("dns-flood", "DNS", dns_queries),
        ("dns-flood-sources", "DNS", dns_queries),
    ]
    baseline: dict[str, float] = {}
    try:
        for kind, name, legit in rows:
            for on in (True, False) if kind else (True,):
                mitigation(plan, on, rules, dns_limit)
                forget_peers(plan)
                measured, achieved = under_flood(plan, kind, pps, seconds, legit)
                if kind is None:
                    baseline[name] = measured.p99_ms
                table.add_row(
                    kind or "none",
                    name,
                    ("on" if on else "off") if kind else "-",
                    f"{achieved:,.0f}",
                    f"{measured.sent:,}",
                    f"{measured.success:.2%}",
                    f"{measured.p99_ms:.1f}",
                    f"{measured.p99_ms / baseline[name]:.2f}x",
                )
    finally:
        set_edge_sysctls(plan, old)
        mitigation(plan, True, rules, dns_limit)
    return table


PARTS = ("cost", "edge-cpu", "cpu", "legit", "capacity")


def main() -> None:
    """Bring up a lab, run the benchmarks, print their tables, remove the lab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="dbench", help="name of the lab it brings up and removes")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=200_000)
    parser.add_argument("--pps", type=int, default=200_000, help="the paced floods of parts 2 and 3")
    parser.add_argument("--rounds", type=int, default=3, help="part 2's rounds per way of dropping")
    parser.add_argument("--capacity-pps", type=int, default=50_000, help="part 5's floods")
    parser.add_argument("--capacity-seconds", type=float, default=8.0, help="part 5's legitimate traffic")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    args = parser.parse_args()
    parts = args.only or PARTS
    if "cost" in parts:
        console.print(bench_program_cost(args.repeat))
    if set(parts) <= {"cost"}:
        return
    with console.status("bringing up the benchmark lab"):
        plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=args.lab, console=Console(quiet=True)).plan
    try:
        if "edge-cpu" in parts:
            console.print(bench_edge_cpu(plan, args.pps, 3.0, args.rounds))
        if "cpu" in parts:
            console.print(bench_cpu(plan, args.pps, 3.0))
        if "legit" in parts:
            console.print(bench_legit(plan, args.requests, args.seconds))
        if "capacity" in parts:
            console.print(bench_capacity(plan, args.capacity_pps, args.capacity_seconds))
    finally:
        lab_api.down(args.lab, quiet=True)


if __name__ == "__main__":
    _ = RULE_ADAPTER  # rules are built from the same models the topology and tasks use
    main()
