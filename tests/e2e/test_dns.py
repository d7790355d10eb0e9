"""DNS end to end: real queries (dig, dnspython) from the clients through the router's ECMP and the edges'
XDP to each edge's one DNS socket, and a real query flood from the attacker, with the socket filter on and
off."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import dns.message
import pytest

from edgesim import namespaces
from edgesim.dns import control
from edgesim.dns.section import DnsLimit
from edgesim.plan import LabPlan
from edgesim.traffic import attacks, dns_probe
from tests.e2e.conftest import E2E_LAB

CLIENTS = ("client1", "client2")
QUERY_RATE = 20.0  # per client, a normal resolver's pace: under the per-source limit on every edge
QUERY_SECONDS = 5.0
# The flood: 16 spoofed sources. XDP's per-source UDP limit holds each to 500/s per edge; together they are
# still several times what the edges' DNS servers answer (a flood the upstream mitigation does not stop).
FLOOD_KIND = "dns-flood-sources"
FLOOD_PPS = 60_000
FLOOD_SECONDS = QUERY_SECONDS + 2.0
MIN_ANSWERED = 0.999


def dig(lab: LabPlan, node: str, *args: str) -> str:
    """dig's output, run inside a lab node."""
    argv = ["dig", "+time=2", "+tries=2", f"@{lab.vips[0]}", *args]
    result = namespaces.run_in(lab.nodes[node].netns, argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def planned_limit(lab: LabPlan):
    """Whatever a test sets, the lab gets its planned limit back afterwards."""
    yield
    assert lab.dns is not None
    control.set_limit(E2E_LAB, DnsLimit(rate=lab.dns.rate, burst=lab.dns.burst, enabled=lab.dns.enabled))


def test_dig_gets_the_zone_from_the_vip(lab: LabPlan) -> None:
    assert dig(lab, "client1", "+short", "www.pop.example").split() == [lab.vips[0]]
    assert dig(lab, "client2", "+short", "acme-www.pop.example").split() == ["203.0.113.100"]
    nxdomain = dig(lab, "client1", "nothing.pop.example")
    assert "status: NXDOMAIN" in nxdomain and "SOA" in nxdomain
    assert "flags: qr aa" in dig(lab, "client1", "pop.example", "NS")
    assert "status: REFUSED" in dig(lab, "client1", "www.example.org")


def burst_from(lab: LabPlan, node: str, count: int, wait_s: float = 3.0) -> int:
    """Send `count` queries at once from one socket (one source port: one edge gets them all); answers.

    `wait_s` is how long to wait for the next answer: generous, since a busy 2-core host can hold a Python
    server's answer back for a second, and a late answer would look like a drop."""
    with namespaces.inside(lab.nodes[node].netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            sock.sendto(dns.message.make_query("www.pop.example", "A").to_wire(), (lab.vips[0], 53))
        sock.settimeout(wait_s)
        answers = 0
        with contextlib.suppress(TimeoutError):
            while answers < count:
                sock.recv(4096)
                answers += 1
        return answers


def source_counts(node_address: str) -> dict[str, tuple[int, int]]:
    """edge -> (passed, dropped) of one source on that edge's DNS socket."""
    per_edge = control.counters(E2E_LAB)
    return {
        edge: (
            counts["sources"].get(node_address, {}).get("passed", 0),
            counts["sources"].get(node_address, {}).get("dropped", 0),
        )
        for edge, counts in per_edge.items()
    }


def test_the_limit_changes_at_run_time_and_drops_per_source(lab: LabPlan, planned_limit: None) -> None:
    client = lab.nodes["client1"].interfaces[0].address.split("/")[0]
    prog_ids = filter_prog_ids(lab)
    # The bucket is a schedule (GCRA): a source that queried lately under the planned limit (the layer-7
    # tests send client1's DNS queries just before) is still ahead of it, and a new limit reads that lead
    # in its own units. A source idle for the planned limit's (burst - 1) / rate has a full bucket.
    assert lab.dns is not None
    time.sleep((lab.dns.burst - 1) / lab.dns.rate + 0.1)
    control.set_limit(E2E_LAB, DnsLimit(rate=1, burst=3, enabled=True))
    before = source_counts(client)
    answered = burst_from(lab, "client1", 20)
    after = source_counts(client)
    moved = {edge: (after[edge][0] - before[edge][0], after[edge][1] - before[edge][1]) for edge in after}
    # The filter's own count first (it says whether a missing answer was dropped or lost after it).
    assert sorted(moved.values())[-1] == (3, 17), moved  # one edge got them all: 3 passed, 17 dropped
    assert answered == 3, moved  # the bucket's three tokens, then nothing at 1/s
    # The same filter stays attached: only its map changed.
    assert filter_prog_ids(lab) == prog_ids
    top = control.stats(E2E_LAB, top=1)
    busiest = next(edge for edge, m in moved.items() if m[1])
    assert top[busiest]["top"][0]["address"] == client
    control.set_limit(E2E_LAB, DnsLimit(rate=1, burst=3, enabled=False))
    assert burst_from(lab, "client1", 20) == 20  # counting only: nothing dropped


def filter_prog_ids(lab: LabPlan) -> dict[str, list[str]]:
    """edge -> ids of the socket filter programs loaded there (bpftool-free: the service's fdinfo)."""
    found = {}
    for edge in lab.nodes_with_role("edge"):
        pids = namespaces.pids_in([edge.netns])[edge.netns]
        ids = []
        for pid in pids:
            for info in Path(f"/proc/{pid}/fdinfo").glob("*"):
                with contextlib.suppress(OSError):
                    text = info.read_text()
                    if "prog_type:\t1\n" in text:  # BPF_PROG_TYPE_SOCKET_FILTER
                        ids += [line.split()[1] for line in text.splitlines() if line.startswith("prog_id:")]
        found[edge.name] = sorted(ids)
    assert all(found.values()), found
    return found


def totals(lab: LabPlan) -> dict[str, int]:
    """The lab's DNS counters summed over the edges: buffer drops, filter drops, queries answered."""
    per_edge = control.counters(E2E_LAB)
    return {
        "rx_drops": sum(c["rx_drops"] for c in per_edge.values()),
        "filter_dropped": sum(c["filter"]["dropped"] for c in per_edge.values()),
        "answered": sum(c["queries"].get("answered", 0) for c in per_edge.values()),
    }


def under_flood(lab: LabPlan, enabled: bool) -> tuple[dns_probe.DnsProbeReport, dict[str, int]]:
    """Both clients' queries while the attacker floods, with the filter on or counting only; the counters."""
    assert lab.dns is not None
    control.set_limit(E2E_LAB, DnsLimit(rate=lab.dns.rate, burst=lab.dns.burst, enabled=enabled))
    before = totals(lab)
    stop = threading.Event()
    args = (lab, FLOOD_KIND, FLOOD_PPS, FLOOD_SECONDS, None, stop)
    flood = threading.Thread(target=attacks.launch, args=args)
    flood.start()
    reports: list[dns_probe.DnsProbeReport] = []
    try:
        # Let the flood reach its pace before the clients start (trafgen starts a sender per CPU).
        threading.Event().wait(1.0)
        clients = [
            threading.Thread(
                target=lambda n=node: reports.append(
                    dns_probe.query_from_node(
                        lab, n, lab.vips[0], "www.pop.example", lab.vips[0], QUERY_RATE, QUERY_SECONDS
                    )
                )
            )
            for node in CLIENTS
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    finally:
        stop.set()
        flood.join()
    after = totals(lab)
    return dns_probe.merged(reports), {key: after[key] - before[key] for key in after}


def test_the_filter_keeps_legitimate_queries_answered_in_a_flood(lab: LabPlan, planned_limit: None) -> None:
    protected, on = under_flood(lab, enabled=True)
    unprotected, off = under_flood(lab, enabled=False)
    for name, report, counts in (("on", protected, on), ("off", unprotected, off)):
        print(
            f"\nfilter {name}: {report.answered}/{report.sent} answered,"
            f" p99 {report.latency_ms(0.99):.1f} ms, {counts}"
        )
    assert protected.sent == unprotected.sent == len(CLIENTS) * int(QUERY_RATE * QUERY_SECONDS)
    assert protected.answered_rate >= MIN_ANSWERED
    assert on["filter_dropped"] > 10 * protected.sent  # the flood was there, and the filter took it
    # Without the filter the same flood fills the sockets' buffers: they drop, and clients go unanswered.
    assert off["filter_dropped"] == 0
    assert off["rx_drops"] > 10 * max(on["rx_drops"], 100)
    assert unprotected.sent - unprotected.answered > 10 * (protected.sent - protected.answered + 1)
