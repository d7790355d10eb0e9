"""In the VM (Debian's 6.1 kernel has ip_gre): a site router in `gre: kernel` against the edges' eBPF GRE.

Run by the VM suite in the guest, by path (the name keeps it out of every host suite's collection: the host
kernel has no ip_gre, so the test could only fail there). The default topology with acme's site router set
to `gre: kernel`: its tunnel is the kernel's GRE device with no TC program on its public interface, the
edges keep their eBPF GRE; HTTP from client1 reaches acme's server through it, and captures at both ends
of the tunnel, the site's public interface and the edges' uplinks, decode as GRE carrying that HTTP.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
import yaml
from pyroute2 import NetNS
from rich.console import Console
from scapy.layers.inet import GRE, IP, TCP

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.nodes.customer import KERNEL_GRE_IFNAME
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.conftest import TEST_PREFIX, leftovers, require_root
from tests.e2e.tools import capture, gre_counters, read_pcap

LAB = f"{TEST_PREFIX}kgre"
ACME_WWW = "203.0.113.100"
GRE_ENDPOINT = "192.0.2.1"
REQUESTS = 20


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabPlan:
    """The default topology with acme's site router in kernel mode, up for this module."""
    require_root()
    topology = yaml.safe_load(lab_api.DEFAULT_TOPOLOGY.read_text())
    topology["nodes"]["acme_gw"]["gre"] = "kernel"
    path = tmp_path_factory.mktemp("topology") / "kernel-gre.yml"
    path.write_text(yaml.safe_dump(topology, sort_keys=False))
    console = Console(stderr=True, quiet=True)
    lab_api.down(LAB, console=console, quiet=True)
    result = lab_api.up(path, lab=LAB, console=console)
    yield result.plan
    lab_api.down(LAB, console=console, quiet=True)
    assert leftovers(LAB) == []


def tshark(pcap: Path, display: str, *fields: str) -> list[list[str]]:
    """The capture's packets matching a display filter, as rows of the fields (tshark's own decoding)."""
    argv = ["tshark", "-r", str(pcap), "-Y", display, "-T", "fields", "-E", "occurrence=f"]
    result = subprocess.run(
        argv + [arg for f in fields for arg in ("-e", f)], capture_output=True, text=True, check=True
    )
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_the_site_router_tunnels_with_the_kernels_gre_device(lab: LabPlan) -> None:
    site = lab.nodes["acme_gw"]
    assert site.tunnel is not None and site.tunnel.mode == "kernel"
    with NetNS(site.netns) as ns:
        (link,) = ns.get_links(ifname=KERNEL_GRE_IFNAME)
        info = link.get_attr("IFLA_LINKINFO")
        assert info.get_attr("IFLA_INFO_KIND") == "gre"
        data = info.get_attr("IFLA_INFO_DATA")
        assert (data.get_attr("IFLA_GRE_LOCAL"), data.get_attr("IFLA_GRE_REMOTE")) == (
            site.tunnel.local,
            GRE_ENDPOINT,
        )
    # No eBPF at the site: nothing on its public interface's TC hooks.
    for hook in ("ingress", "egress"):
        argv = ["tc", "filter", "show", "dev", site.tunnel.ifname, hook]
        shown = namespaces.run_in(site.netns, argv, capture_output=True, text=True, check=True)
        assert shown.stdout.strip() == "", f"a TC filter on the site's {hook}: {shown.stdout}"


def test_http_through_kernel_gre_to_ebpf_gre_decodes_on_both_sides(lab: LabPlan, tmp_path: Path) -> None:
    site = lab.nodes["acme_gw"]
    assert site.tunnel is not None
    local = site.tunnel.local
    edges = [n.name for n in lab.nodes_with_role("edge")]
    before = gre_counters(LAB)
    with contextlib.ExitStack() as stack:
        site_pcap = stack.enter_context(
            capture(site.netns, site.tunnel.ifname, tmp_path / "site.pcap", "ip proto 47", 512)
        )
        edge_pcaps = [
            stack.enter_context(
                capture(lab.nodes[e].netns, "eth-router", tmp_path / f"{e}.pcap", "ip proto 47", 512)
            )
            for e in edges
        ]
        report = probe_from_node(LAB, "client1", f"{ACME_WWW}:80", REQUESTS, concurrency=4)
    assert [f.error for f in report.fetches if f.error] == []
    assert set(report.per_edge()) == {"acme_www"}, "the body names the server that answered"

    # The site's side: the kernel's GRE, plain (no key, checksum or sequence), between it and the anycast end.
    packets = [p for p in read_pcap(site_pcap) if p.haslayer(GRE)]
    out = [p for p in packets if p[IP].src == local and p[IP].dst == GRE_ENDPOINT]
    into = [p for p in packets if p[IP].src == GRE_ENDPOINT and p[IP].dst == local]
    assert out and into, f"site capture: {len(out)} packets out, {len(into)} in"
    for packet in packets:
        gre = packet[GRE]
        assert (gre.chksum_present, gre.key_present, gre.seqnum_present, gre.version, gre.proto) == (
            0,
            0,
            0,
            0,
            0x0800,
        )
    assert any(p[GRE][TCP].sport == 80 for p in out if p[GRE].haslayer(TCP))

    # tshark decodes HTTP inside the GRE on both sides: requests towards the site, answers from it.
    edge_rows = [
        row for pcap in edge_pcaps for row in tshark(pcap, "gre && http.request", "ip.src", "http.host")
    ]
    site_requests = tshark(site_pcap, "gre && http.request", "ip.src", "http.request.method")
    site_answers = tshark(site_pcap, "gre && http.response", "ip.src", "http.response.code")
    edge_answers = [
        row
        for pcap in edge_pcaps
        for row in tshark(pcap, "gre && http.response", "ip.src", "http.response.code")
    ]
    assert len(site_requests) >= REQUESTS and {r[0] for r in site_requests} == {GRE_ENDPOINT}
    assert {r[1] for r in site_requests} == {"GET"}
    assert len(site_answers) >= REQUESTS and {tuple(r) for r in site_answers} == {(local, "200")}
    assert len(edge_rows) >= REQUESTS, f"the edges' uplinks carried {len(edge_rows)} tunneled requests"
    assert len(edge_answers) >= REQUESTS and {r[0] for r in edge_answers} == {local}

    # The edges' eBPF took the kernel's packets apart: acme's decapsulated counters rose.
    after = gre_counters(LAB)
    decapsulated = sum(
        after[e]["acme"]["decapsulated"] - before.get(e, {}).get("acme", {}).get("decapsulated", 0)
        for e in edges
    )
    assert decapsulated >= len(out), f"the edges decapsulated {decapsulated} packets"
