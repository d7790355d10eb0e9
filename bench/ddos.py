"""DoS mitigation benchmark: every figure measured side by side in one run on this machine.

1. Legitimate HTTP (success rate, p99 latency) with no attack, then under each attack with mitigation
   on, then with mitigation off (no XDP rules).
2. Per-packet cost of the DoS program (BPF_PROG_TEST_RUN, ns/packet) with 1, 1,000 and 100,000
   source-prefix rules, next to a program that only returns XDP_DROP.
3. CPU time per million packets of one paced UDP reflection flood, dropped by XDP, by an equivalent
   nftables rule (netdev ingress on the edges' uplinks) and by nothing (the packets reach the stack).

Run as root: `.venv/bin/python bench/ddos.py` (about three minutes; it brings up and removes its own lab).
"""

from __future__ import annotations

import argparse
import threading
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from rich.console import Console
from rich.table import Table
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.bpf import loader, testrun
from edgesim.mitigation import control, maps, store
from edgesim.mitigation.rules import RULE_ADAPTER, DropSrc, RuleSet, build_rule_set
from edgesim.plan import LabPlan
from edgesim.traffic import attacks
from edgesim.traffic.http_probe import ProbeReport, probe_from_node

LAB = "bench"
console = Console(width=140)


def legit_under(plan: LabPlan, kind: str | None, seconds: float, requests: int) -> tuple[ProbeReport, float]:
    """Client load during an attack (or none); returns the load report and the attack's packet rate."""
    result: list[attacks.AttackReport] = []
    flood = None
    if kind:
        flood = threading.Thread(target=lambda: result.append(attacks.launch(plan, kind, 0, seconds)))
        flood.start()
        time.sleep(1.0)
    report = probe_from_node(LAB, "client1", f"{plan.vips[0]}:80", requests, 32, hold=False, timeout=3.0)
    if flood:
        flood.join()
    return report, (result[0].pps if result else 0.0)


def bench_legit(plan: LabPlan, requests: int, seconds: float) -> Table:
    """Table 1: legitimate success and p99 with no attack, and each attack with mitigation on and off."""
    table = Table(title=f"legitimate HTTP from client1 ({requests} requests, one connection each)")
    for column in ("attack", "mitigation", "attack pps", "success", "p99 ms"):
        table.add_column(column, justify="right")
    report, _ = legit_under(plan, None, seconds, requests)
    table.add_row("none", "-", "0", f"{report.success_rate:.2%}", f"{report.latency_ms(0.99):.1f}")
    rules = store.read(store.rules_path(LAB))
    for kind in attacks.ATTACKS:
        for mitigation in ("on", "off"):
            store.write(store.rules_path(LAB), rules if mitigation == "on" else RuleSet())
            control.reload_all(LAB)
            report, pps = legit_under(plan, kind, seconds, requests)
            table.add_row(
                kind,
                mitigation,
                f"{pps:,.0f}",
                f"{report.success_rate:.2%}",
                f"{report.latency_ms(0.99):.1f}",
            )
    store.write(store.rules_path(LAB), rules)
    control.reload_all(LAB)
    return table


def ns_per_packet(fd: int, packet: bytes, repeat: int) -> float:
    """Average run time of the program on one packet, in ns (best of three to dampen noise)."""
    return min(testrun.run(fd, packet, repeat).duration_ns for _ in range(3))


def bench_program_cost(repeat: int) -> Table:
    """Table 2: ns/packet of the DoS program with 1, 1,000 and 100,000 prefixes, next to XDP_DROP."""
    table = Table(title=f"per-packet cost, BPF_PROG_TEST_RUN ({repeat:,} runs each)")
    for column in ("program", "rules", "packet", "verdict", "ns/packet"):
        table.add_column(column, justify="right")
    dropper = loader.compile_program(Path("xdp_drop.c"))
    fd = loader.load_xdp(dropper, "xdp_drop")
    legit = raw(
        Ether() / IP(src="100.64.0.1", dst="198.51.100.10") / UDP(sport=40000, dport=443) / Raw(b"x" * 18)
    )
    table.add_row("xdp_drop (floor)", "-", "UDP", "XDP_DROP", f"{ns_per_packet(fd, legit, repeat):.1f}")
    # Prefixes spread over 100.64.0.0/10, none covering the legitimate client; the last one is hit.
    prefixes = list(IPv4Network("100.96.0.0/11").subnets(new_prefix=28))
    for count in (1, 1_000, 100_000):
        program = loader.compile_program(Path("xdp_edge.c"))
        prog_fd = loader.load_xdp(program, "xdp_ddos")
        chosen = prefixes[:: max(1, len(prefixes) // count)][:count]
        rules = build_rule_set([DropSrc(kind="drop_src", prefix=p) for p in chosen])
        maps.apply(program, maps.contents_for(rules))
        hit = str(IPv4Address(int(chosen[-1].network_address) + 1))
        attack = raw(Ether() / IP(src=hit, dst="198.51.100.10") / UDP(sport=53, dport=40000) / Raw(b"x" * 18))
        for name, packet in (("legitimate UDP", legit), ("matching source", attack)):
            result = testrun.run(prog_fd, packet)
            table.add_row(
                "xdp_ddos",
                f"{count:,}",
                name,
                result.verdict,
                f"{ns_per_packet(prog_fd, packet, repeat):.1f}",
            )
        program.cleanup()
    dropper.cleanup()
    return table


def cpu_seconds() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of all cores since boot, from /proc/stat.

    Receiving runs in softirq (veth NAPI, XDP, nftables, the IP stack), so the softirq share is where
    the three ways of dropping differ; the sender's own work (trafgen pacing in a busy loop) is not in it.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy / 100.0, softirq / 100.0  # USER_HZ


def nft_uplinks(plan: LabPlan, add: bool) -> None:
    """The nftables equivalent of the XDP rule: drop UDP from port 53 at netdev ingress of each uplink."""
    import nftables

    for node in plan.nodes_with_role("edge"):
        with namespaces.inside(node.netns):
            nft = nftables.Nftables()
            script = (
                "table netdev bench {\n  chain ingress {\n"
                f'    type filter hook ingress device "{node.uplink}" priority -500; policy accept;\n'
                "    udp sport 53 drop\n  }\n}\n"
                if add
                else "table netdev bench\ndelete table netdev bench\n"
            )
            rc, _, err = nft.cmd(script)
            assert rc == 0, err


def bench_cpu(plan: LabPlan, pps: int, seconds: float) -> Table:
    """Table 3: CPU per million packets of the same paced flood, dropped three ways."""
    table = Table(
        title=f"CPU time per million packets, udp-reflection paced at {pps:,} pps for {seconds:g} s"
    )
    for column in ("dropped by", "packets", "busy CPU s", "softirq CPU s", "softirq s / Mpkt", "vs XDP"):
        table.add_column(column, justify="right")
    rules = store.read(store.rules_path(LAB))
    results = []
    for variant in ("XDP", "nftables netdev ingress", "nothing (reaches the stack)"):
        store.write(store.rules_path(LAB), rules if variant == "XDP" else RuleSet())
        control.reload_all(LAB)
        nft_uplinks(plan, add=variant.startswith("nftables"))
        time.sleep(0.5)
        busy_before, soft_before = cpu_seconds()
        report = attacks.launch(plan, "udp-reflection", pps, seconds)
        busy_after, soft_after = cpu_seconds()
        if variant.startswith("nftables"):
            nft_uplinks(plan, add=False)
        results.append((variant, report.packets, busy_after - busy_before, soft_after - soft_before))
    store.write(store.rules_path(LAB), rules)
    control.reload_all(LAB)
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


def main() -> None:
    """Bring up a lab, run the three benchmarks, print their tables, remove the lab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=200_000)
    parser.add_argument("--pps", type=int, default=200_000)
    parser.add_argument("--only", choices=["cost", "cpu", "legit"], help="run one of the three parts")
    args = parser.parse_args()
    if args.only in (None, "cost"):
        console.print(bench_program_cost(args.repeat))
    if args.only == "cost":
        return
    with console.status("bringing up the benchmark lab"):
        plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=LAB, console=Console(quiet=True)).plan
    try:
        if args.only in (None, "cpu"):
            console.print(bench_cpu(plan, args.pps, 3.0))
        if args.only in (None, "legit"):
            console.print(bench_legit(plan, args.requests, args.seconds))
    finally:
        lab_api.down(LAB, quiet=True)


if __name__ == "__main__":
    _ = RULE_ADAPTER  # rules are built from the same models the topology and tasks use
    main()
