"""Tenants end to end: firewall in a namespace per edge, anycast GRE to the customer site, the config store.

Real traffic from the lab's clients through the router's ECMP, the edges' tenant namespaces (nftables),
eBPF GRE to the customer site routers and back through any edge; captures decoded with scapy and tshark.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path

from scapy.layers.inet import GRE, IP, TCP

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.lab import REPO_ROOT
from edgesim.plan import LabPlan
from edgesim.plan.naming import tenant_netns
from edgesim.services.ftp_files import data_bytes
from edgesim.tenants import admin, nft
from edgesim.traffic import streams
from edgesim.traffic.http_probe import probe_from_node
from tests.e2e.conftest import E2E_LAB
from tests.e2e.tools import (
    capture,
    delta,
    fail_edge,
    firewall_counters,
    ftp_retrieve,
    gre_counters,
    read_pcap,
    restore_edge,
    sha256,
    tcp_connects,
)

ACME_WWW = "203.0.113.100"
GLOBEX_WWW = "203.0.113.200"
GRE_ENDPOINT = "192.0.2.1"
# Port 8080: the customer servers answer HTTP there too, but the default firewalls do not let it through.
CLOSED_PORT = 8080
RULE_8080 = f"ip daddr {ACME_WWW} tcp dport {CLOSED_PORT} accept"


def edges(plan: LabPlan) -> list[str]:
    return [n.name for n in plan.nodes_with_role("edge")]


def site_address(plan: LabPlan, node: str) -> str:
    tunnel = plan.nodes[node].tunnel
    assert tunnel is not None
    return tunnel.local


def edgesim_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI as a user runs it (`edgesim` is `invoke` with the same tasks)."""
    return subprocess.run(
        [sys.executable, "-m", "edgesim", *args, "--lab", E2E_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_http_and_ftp_reach_acme_through_the_whole_path(lab: LabPlan) -> None:
    report = probe_from_node(E2E_LAB, "client1", f"{ACME_WWW}:80", 20)
    assert [f.error for f in report.fetches if f.error] == []
    assert set(report.per_edge()) == {"acme_www"}, "the body names the server that answered"

    client = lab.nodes["client1"].netns
    hello, _ = ftp_retrieve(client, ACME_WWW, "hello.txt")
    assert hello == b"acme_www\n"
    data, peer = ftp_retrieve(client, ACME_WWW, "data.bin")
    assert sha256(data) == sha256(data_bytes()), f"{len(data)} bytes arrived, not the server's 1 MiB"
    assert peer == (ACME_WWW, 20), "active-mode data comes from the server's port 20, which the rules allow"


def test_a_closed_port_is_dropped_in_the_tenant_namespace_and_never_reaches_the_site(
    lab: LabPlan, tmp_path: Path
) -> None:
    before = firewall_counters(E2E_LAB)
    site = lab.nodes["acme_gw"]
    with capture(site.netns, site.tunnel.ifname, tmp_path / "site.pcap", "ip proto 47") as pcap:
        assert not tcp_connects(lab.nodes["client1"].netns, ACME_WWW, CLOSED_PORT, timeout=1.5)
        assert tcp_connects(lab.nodes["client1"].netns, ACME_WWW, 80)  # the control: port 80 gets there
    dropped = delta(firewall_counters(E2E_LAB), before, "acme", "dropped")
    assert sum(dropped.values()) >= 1, f"acme's dropped counters did not move: {dropped}"
    inner_ports = Counter(
        p[GRE][TCP].dport for p in read_pcap(pcap) if p.haslayer(GRE) and p[GRE].haslayer(TCP)
    )
    assert inner_ports[80] >= 1, "the site saw no tunneled packet at all: the capture is broken"
    assert inner_ports[CLOSED_PORT] == 0, "a packet to the closed port reached the customer site"


def test_200_connections_spread_over_the_edges_and_return_through_others(
    lab: LabPlan, tmp_path: Path
) -> None:
    """Requests hash over ≥ 3 edges; each connection's return GRE may enter anywhere, and all complete."""
    before = firewall_counters(E2E_LAB)
    site = site_address(lab, "acme_gw")
    pcaps = {}
    with contextlib.ExitStack() as stack:
        for edge in edges(lab):
            node = lab.nodes[edge]
            pcaps[edge] = stack.enter_context(
                capture(
                    node.netns, "eth-router", tmp_path / f"{edge}.pcap", "tcp port 80 or ip proto 47", 128
                )
            )
        report = probe_from_node(E2E_LAB, "client1", f"{ACME_WWW}:80", 200, concurrency=50)
    failures = [f.error for f in report.fetches if f.error]
    assert failures == [], f"{len(failures)} of 200 failed, e.g. {failures[:3]}"
    ports = {f.source_port for f in report.fetches}
    assert len(ports) == 200
    syn = delta(firewall_counters(E2E_LAB), before, "acme", "syn")
    assert sum(syn.values()) >= 200
    assert sum(1 for n in syn.values() if n > 0) >= 3, f"connections per edge: {syn}"

    request_edge: dict[int, str] = {}
    return_edges: dict[int, set[str]] = {}
    for edge, pcap in pcaps.items():
        for packet in read_pcap(pcap):
            if packet.haslayer(GRE) and packet[IP].src == site and packet[GRE].haslayer(TCP):
                inner = packet[GRE][IP]
                if inner.src == ACME_WWW and inner[TCP].dport in ports:
                    return_edges.setdefault(inner[TCP].dport, set()).add(edge)
            elif not packet.haslayer(GRE) and packet.haslayer(TCP) and packet[IP].dst == ACME_WWW:
                if packet[TCP].flags == "S" and packet[TCP].sport in ports:
                    request_edge[packet[TCP].sport] = edge
    assert len(request_edge) == 200, "every SYN was seen on the uplink of the edge that took it"
    crossed = [p for p, edge in request_edge.items() if return_edges.get(p, set()) - {edge}]
    assert crossed, (
        f"no connection's return traffic entered through another edge: {Counter(request_edge.values())}"
    )
    decapsulated = delta(gre_counters(E2E_LAB), {}, "acme", "decapsulated")
    assert sum(decapsulated.values()) > 0


def test_captures_on_the_edge_site_path_are_plain_gre(lab: LabPlan, tmp_path: Path) -> None:
    router = lab.nodes["router"]
    site = site_address(lab, "acme_gw")
    with capture(
        router.netns, router.interface_to("acme_gw").name, tmp_path / "path.pcap", "ip proto 47"
    ) as pcap:
        report = probe_from_node(E2E_LAB, "client1", f"{ACME_WWW}:80", 16)
    assert [f.error for f in report.fetches if f.error] == []

    packets = [p for p in read_pcap(pcap) if p.haslayer(GRE)]
    towards_site = [p for p in packets if p[IP].dst == site]
    from_site = [p for p in packets if p[IP].src == site]
    assert towards_site and from_site
    for packet in packets:
        gre = packet[GRE]
        assert (gre.chksum_present, gre.key_present, gre.seqnum_present, gre.version) == (0, 0, 0, 0)
        assert gre.proto == 0x0800 and gre.haslayer(TCP)
    assert {p[IP].src for p in towards_site} == {GRE_ENDPOINT}, "the edges' side of the tunnel is anycast"
    assert {p[IP].dst for p in from_site} == {GRE_ENDPOINT}

    fields = ["ip.src", "ip.dst", "gre.flags_and_version", "gre.proto", "ip.checksum.status", "tcp.dstport"]
    result = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-o",
            "ip.check_checksum:TRUE",
            "-Y",
            "gre",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
        ]
        + [arg for f in fields for arg in ("-e", f)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(packets)
    for src, dst, flags, proto, checksums, _ in rows:
        assert GRE_ENDPOINT in (src.split(",")[0], dst.split(",")[0])
        assert flags == "0x0000" and proto == "0x0800"
        assert set(checksums.split(",")) == {"1"}, "tshark found a bad outer or inner IPv4 checksum"


def test_tenants_are_isolated_even_with_spoofed_sources_and_an_allow_all_rule(
    lab: LabPlan, tmp_path: Path
) -> None:
    change = admin.add_rule(E2E_LAB, "globex", "accept")  # globex lets everything through
    admin.wait_applied(E2E_LAB, change.revision)
    marker = uuid.uuid4().hex.encode()
    globex_site = site_address(lab, "globex_gw")
    # Spoofed: to globex with acme's addresses as source; to acme's closed ports with globex's; GRE to
    # the anycast endpoint posing as globex's site but carrying acme's addresses; GRE from nobody known.
    spoofed = f"""
from scapy.all import GRE, IP, TCP, UDP, Raw, send
m = {marker!r}
packets = [
    IP(src="{ACME_WWW}", dst="{GLOBEX_WWW}") / TCP(sport=80, dport=22) / Raw(m + b"-to-globex"),
    IP(src="203.0.113.5", dst="203.0.113.130") / UDP(sport=40053, dport=53) / Raw(m + b"-to-globex"),
    IP(src="{GLOBEX_WWW}", dst="{ACME_WWW}") / TCP(sport=80, dport=23) / Raw(m + b"-to-acme"),
    IP(src="{GLOBEX_WWW}", dst="203.0.113.7") / UDP(sport=40053, dport=53) / Raw(m + b"-to-acme"),
    IP(src="{globex_site}", dst="{GRE_ENDPOINT}") / GRE() / IP(src="{ACME_WWW}", dst="100.64.0.1")
        / UDP(dport=9) / Raw(m + b"-gre-spoof"),
    IP(dst="{GRE_ENDPOINT}") / GRE() / IP(src="{GLOBEX_WWW}", dst="{ACME_WWW}") / UDP(dport=9)
        / Raw(m + b"-to-acme"),
]
send(packets * 5, verbose=False)
"""
    watched = {f"acme@{edge}": (tenant_netns(E2E_LAB, edge, "acme"), "eth-edge") for edge in edges(lab)} | {
        f"globex@{edge}": (tenant_netns(E2E_LAB, edge, "globex"), "eth-edge") for edge in edges(lab)
    }
    watched["acme site"] = (lab.nodes["acme_gw"].netns, "any")
    watched["globex site"] = (lab.nodes["globex_gw"].netns, "any")
    before = gre_counters(E2E_LAB)
    try:
        with contextlib.ExitStack() as stack:
            pcaps = {
                name: stack.enter_context(capture(ns, ifname, tmp_path / f"{name.replace(' ', '_')}.pcap"))
                for name, (ns, ifname) in watched.items()
            }
            sent = lab_api.exec_in(E2E_LAB, "attacker", [sys.executable, "-c", spoofed], capture_output=True)
            assert sent.returncode == 0, sent.stderr
            time.sleep(0.5)
    finally:
        change = admin.remove_rule(E2E_LAB, "globex", "accept")
        admin.wait_applied(E2E_LAB, change.revision)

    def seen(name: str) -> Counter[bytes]:
        found: Counter[bytes] = Counter()
        for packet in read_pcap(pcaps[name]):
            raw = bytes(packet)
            if marker in raw:
                found[raw[raw.index(marker) + len(marker) :][:12]] += 1
        return found

    acme_side = sum((seen(n) for n in watched if n.startswith("acme")), Counter())
    globex_side = sum((seen(n) for n in watched if n.startswith("globex")), Counter())
    assert acme_side[b"-to-globex"] == 0 and acme_side[b"-gre-spoof"] == 0, f"acme saw {acme_side}"
    assert globex_side[b"-to-acme"] == 0, f"globex saw {globex_side}"
    assert globex_side[b"-to-globex"] >= 10, "globex allows everything: its spoofed packets must get there"
    spoofed_gre = delta(gre_counters(E2E_LAB), before, "globex", "spoofed")
    unknown = delta(gre_counters(E2E_LAB), before, "0", "unknown_remote")
    assert sum(spoofed_gre.values()) >= 5, f"spoofed inner sources not counted: {spoofed_gre}"
    assert sum(unknown.values()) >= 5, f"GRE from an unknown remote not counted: {unknown}"


def test_decapsulated_gre_never_reaches_the_infrastructure_or_another_tenant(
    lab: LabPlan, tmp_path: Path
) -> None:
    """Issue 17, probe 4: GRE spoofed from acme's site address, its inner SYNs aimed at etcd (the management
    network) and at globex's open port. Decapsulated traffic is routed in acme's namespace only, towards the
    internet: nothing arrives, and the edges count what they refused, per reason."""
    acme_site = site_address(lab, "acme_gw")
    etcd = [i.address.split("/")[0] for i in lab.nodes["mgmt"].interfaces]  # etcd listens on each of these
    marker = uuid.uuid4().hex.encode()
    probe = f"""
from scapy.all import GRE, IP, TCP, Raw, send
m = {marker!r}
infra = [IP(src="{acme_site}", dst="{GRE_ENDPOINT}") / GRE() / IP(src="{ACME_WWW}", dst=d)
         / TCP(dport=2379, flags="S") / Raw(m + b"-infra") for d in {etcd!r}]
tenant = IP(src="{acme_site}", dst="{GRE_ENDPOINT}") / GRE() / IP(src="{ACME_WWW}", dst="{GLOBEX_WWW}") \
    / TCP(dport=80, flags="S") / Raw(m + b"-tenant")
send(infra * 20 + [tenant] * 20, verbose=False)
"""
    watched = {
        "mgmt": (lab.nodes["mgmt"].netns, "any"),
        "globex site": (lab.nodes["globex_gw"].netns, "any"),
        "globex www": (lab.nodes["globex_www"].netns, "any"),
    } | {f"globex@{edge}": (tenant_netns(E2E_LAB, edge, "globex"), "eth-edge") for edge in edges(lab)}
    before = gre_counters(E2E_LAB)
    with contextlib.ExitStack() as stack:
        pcaps = {
            name: stack.enter_context(capture(ns, ifname, tmp_path / f"{name.replace(' ', '_')}.pcap"))
            for name, (ns, ifname) in watched.items()
        }
        sent = lab_api.exec_in(E2E_LAB, "attacker", [sys.executable, "-c", probe], capture_output=True)
        assert sent.returncode == 0, sent.stderr
        time.sleep(0.5)
    arrived = {
        name: sum(1 for packet in read_pcap(pcap) if marker in bytes(packet)) for name, pcap in pcaps.items()
    }
    assert arrived == dict.fromkeys(watched, 0), f"decapsulated packets arrived: {arrived}"
    after = gre_counters(E2E_LAB)
    infra, tenant = (
        delta(after, before, "acme", "to_infrastructure"),
        delta(after, before, "acme", "to_tenant"),
    )
    assert sum(infra.values()) >= 20 * len(etcd), f"refusals towards the infrastructure not counted: {infra}"
    assert sum(tenant.values()) >= 20, f"refusals towards another tenant not counted: {tenant}"


def test_the_infrastructure_is_unreachable_from_a_tenant_namespace(lab: LabPlan) -> None:
    """Nothing in a tenant's context reaches the edge itself or the lab's infrastructure: not etcd, not the
    edge's agent, not the router's link address; the edge counts what its tenant namespaces sent there."""
    etcd = lab.nodes["edge1"].interface_to("mgmt")
    targets = [
        (etcd.peer_address, 2379),  # etcd in the management namespace
        (etcd.address.split("/")[0], 9180),  # the edge's own tenant agent
        (lab.nodes["edge1"].interface_to("router").peer_address, 179),  # the router's BGP
        (lab.vips[0], 80),  # the edge's own service on the VIP
    ]
    netns = tenant_netns(E2E_LAB, "edge1", "acme")
    before = nft.counters(lab.nodes["edge1"].netns, nft.EDGE_TABLE).get(nft.EDGE_REFUSED_COUNTER, 0)
    reached = [target for target in targets if tcp_connects(netns, *target, timeout=0.5)]
    assert reached == [], f"reachable from acme's namespace on edge1: {reached}"
    after = nft.counters(lab.nodes["edge1"].netns, nft.EDGE_TABLE).get(nft.EDGE_REFUSED_COUNTER, 0)
    assert after - before >= len(targets), "the edge's wall must have counted every attempt"


def _set_rule_8080(present: bool) -> None:
    """Make acme's rule for port 8080 present or absent, and applied everywhere."""
    spec = admin.list_tenants(E2E_LAB).tenants["acme"]
    if (RULE_8080 in spec.rules) != present:
        change = (admin.add_rule if present else admin.remove_rule)(E2E_LAB, "acme", RULE_8080)
        admin.wait_applied(E2E_LAB, change.revision)


def test_a_rule_added_with_the_cli_is_enforced_on_every_edge_within_2_s(lab: LabPlan) -> None:
    _set_rule_8080(False)
    client = lab.nodes["client1"].netns
    assert not tcp_connects(client, ACME_WWW, CLOSED_PORT, timeout=0.5)
    spec = admin.list_tenants(E2E_LAB).tenants["acme"]
    assert lab.tenancy is not None
    refused = [IPv4Network(net) for net in lab.tenancy.refused]
    wanted = nft.tenant_ruleset(spec.model_copy(update={"rules": [*spec.rules, RULE_8080]}), refused)
    digest = wanted.digest
    namespaces_ = [tenant_netns(E2E_LAB, edge, "acme") for edge in edges(lab)]
    store = admin.store_for(E2E_LAB)
    revision = store.snapshot().revision

    cli = subprocess.Popen(
        [sys.executable, "-m", "edgesim", "tenant.rule.add", "acme", RULE_8080, "--lab", E2E_LAB],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    written = enforced = None
    pending = set(namespaces_)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        if written is None and store.snapshot().revision > revision:
            written = now
        pending = {ns for ns in pending if nft.applied_digest(ns, nft.TENANT_TABLE) != digest}
        if not pending:
            enforced = time.monotonic()
        time.sleep(0.02)
    output, _ = cli.communicate(timeout=30)
    assert cli.returncode == 0, output
    assert written is not None and enforced is not None, f"not enforced on {pending}: {output}"
    took = enforced - written
    print(f"rule propagation: enforced on all {len(namespaces_)} edges {took:.2f} s after the store write")
    assert took <= 2.0, f"took {took:.2f} s"

    # Enforced means traffic: connections to the newly opened port now get through every edge.
    before = firewall_counters(E2E_LAB)
    report = probe_from_node(E2E_LAB, "client1", f"{ACME_WWW}:{CLOSED_PORT}", 64)
    assert [f.error for f in report.fetches if f.error] == []
    syn = delta(firewall_counters(E2E_LAB), before, "acme", "syn")
    assert all(n > 0 for n in syn.values()), f"not every edge carried a connection: {syn}"


def test_rules_hold_without_the_store_and_a_change_made_meanwhile_is_applied_when_it_returns(
    lab: LabPlan,
) -> None:
    client = lab.nodes["client1"].netns
    _set_rule_8080(True)
    lab_api.stop_service(E2E_LAB, "mgmt", "etcd")
    try:
        deadline = time.monotonic() + 10
        while any(s.get("store", {}).get("reachable") for s in admin.agent_status(E2E_LAB).values()):
            assert time.monotonic() < deadline, "the agents did not notice the store was gone"
            time.sleep(0.2)
        # Enforcement goes on with the store gone: what the rules allow passes (port 8080 too, opened by a
        # rule from the store), what they do not is dropped (globex's server listens on 8080 as well).
        before = firewall_counters(E2E_LAB)
        for _ in range(3):
            for target in (f"{ACME_WWW}:80", f"{ACME_WWW}:{CLOSED_PORT}"):
                report = probe_from_node(E2E_LAB, "client1", target, 16)
                assert [f.error for f in report.fetches if f.error] == []
            assert not tcp_connects(client, GLOBEX_WWW, CLOSED_PORT, timeout=0.3)
            time.sleep(0.5)
        assert sum(delta(firewall_counters(E2E_LAB), before, "globex", "dropped").values()) >= 3
        refused = edgesim_cli("tenant.rule.add", "acme", f"ip daddr {ACME_WWW} tcp dport 23 accept")
        assert refused.returncode == 1 and "config store" in refused.stderr, refused.stderr
        assert all(s["applied"]["tenants"] for s in admin.agent_status(E2E_LAB).values())
    finally:
        # The store comes back, but cut off from the edges (as in a partition of the management network).
        mgmt = lab.nodes["mgmt"].netns
        try:
            _nft(mgmt, PARTITION)
        finally:
            lab_api.start_service(E2E_LAB, "mgmt", "etcd")
    try:
        change = admin.remove_rule(E2E_LAB, "acme", RULE_8080)  # made while no edge can see it
        time.sleep(1.5)
        assert tcp_connects(client, ACME_WWW, CLOSED_PORT), "the edges kept their last config"
    finally:
        _nft(mgmt, "delete table ip partition")
    took = admin.wait_applied(E2E_LAB, change.revision, timeout=10)
    print(f"catch-up after the store became reachable: {took:.2f} s")
    assert not tcp_connects(client, ACME_WWW, CLOSED_PORT, timeout=0.5)


# In the management namespace: nothing but its own loopback reaches etcd.
PARTITION = """
table ip partition {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname != "lo" drop
    }
}
"""


def _nft(netns: str, script: str) -> None:
    result = namespaces.run_in(netns, ["nft", "-f", "-"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_edge_failure_costs_at_most_1_s_of_errors(lab: LabPlan) -> None:
    """An edge dies (links down) under a stream of new connections to acme: the router stops using it
    (BFD and BGP withdraw it; with static routing it is taken out of the ECMP routes), the stateless
    tenant path lets the other edges carry on, including connections that were going through it."""
    before = firewall_counters(E2E_LAB)
    proc = streams.start(lab.nodes["client1"].netns, f"{ACME_WWW}:80", rate=50, timeout=1.0)
    try:
        time.sleep(2.0)
        carried = delta(firewall_counters(E2E_LAB), before, "acme", "syn")["edge2"]
        failed_at = time.monotonic()
        fail_edge(lab, "edge2")
        time.sleep(4.0)
    finally:
        try:
            report = streams.finish(proc)
        finally:
            restore_edge(lab, "edge2")
    failed = report.failed()
    assert len(report.requests) > 200
    assert carried > 0, "edge2 carried none of the stream before it failed: the test would prove nothing"
    window = failed[-1].started - failed[0].started if failed else 0.0
    print(f"edge failure: {len(failed)} of {len(report.requests)} requests failed, over {window:.2f} s")
    assert window <= 1.0, f"errors for {window:.2f} s: {failed[:5]}"
    assert all(r.started < failed_at + 1.5 for r in failed), "requests failed long after the failure"
    after = [r for r in report.requests if r.started > failed_at + 1.5]
    assert after and all(r.error is None for r in after)

    # Restored: edge2 carries tenant traffic again once its routes and its agent's repairs are back.
    deadline = time.monotonic() + 30
    while True:
        before = firewall_counters(E2E_LAB)
        probe = probe_from_node(E2E_LAB, "client1", f"{ACME_WWW}:80", 64)
        syn = delta(firewall_counters(E2E_LAB), before, "acme", "syn")
        if not [f for f in probe.fetches if f.error] and syn["edge2"] > 0:
            break
        assert time.monotonic() < deadline, f"edge2 did not come back: {syn}"
        time.sleep(0.5)


def test_tenant_rm_removes_it_from_every_edge_and_add_brings_it_back(lab: LabPlan) -> None:
    spec = admin.list_tenants(E2E_LAB).tenants["globex"]
    removed = edgesim_cli("tenant.rm", "globex")
    assert removed.returncode == 0, removed.stderr
    assert "applied on every edge" in removed.stderr
    assert [ns for ns in namespaces.list_with_prefix(f"{E2E_LAB}-") if ns.endswith("-globex")] == []
    assert not tcp_connects(lab.nodes["client1"].netns, GLOBEX_WWW, 80, timeout=0.5)

    args = ["tenant.add", "globex", "--site-node", "globex_gw"]
    args += [a for p in spec.prefixes for a in ("--prefix", str(p))]
    args += [a for r in spec.rules for a in ("--rule", r)]
    added = edgesim_cli(*args)
    assert added.returncode == 0, added.stderr
    assert len([ns for ns in namespaces.list_with_prefix(f"{E2E_LAB}-") if ns.endswith("-globex")]) == 4
    report = probe_from_node(E2E_LAB, "client1", f"{GLOBEX_WWW}:80", 16)
    assert [f.error for f in report.fetches if f.error] == []
    assert admin.list_tenants(E2E_LAB).tenants["globex"].rules == spec.rules


def test_tenant_errors_are_user_errors(lab: LabPlan) -> None:
    overlap = edgesim_cli("tenant.add", "initech", "--prefix", "203.0.113.64/26", "--site", "100.64.0.50")
    assert overlap.returncode == 1
    assert "overlaps 203.0.113.0/25 of tenant acme" in overlap.stderr
    bad_rule = edgesim_cli("tenant.rule.add", "acme", "tcp dport 80 allow")
    assert bad_rule.returncode == 1 and "a rule ends with accept or drop" in bad_rule.stderr
    unknown = edgesim_cli("tenant.rule.rm", "nobody", "accept")
    assert unknown.returncode == 1 and "tenant nobody: does not exist" in unknown.stderr
    assert "Traceback" not in overlap.stderr + bad_rule.stderr + unknown.stderr
