"""The foundation, end to end: real TCP connections through the router's ECMP to the edges' anycast VIP."""

from __future__ import annotations

import os
import socket
import time
from ipaddress import IPv4Network

import pytest
from pyroute2 import IPRoute
from rich.console import Console

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.model import DESIGN_RANGES
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.e2e.conftest import E2E_LAB, root_routes

CONNECTIONS = 1024
# Each edge's share is Binomial(1024, 1/4): mean 256, standard deviation sqrt(1024 * 1/4 * 3/4) = 13.9.
# ±25% is ±64 connections, 4.6 standard deviations: a fair L4 hash falls outside with p ≈ 4e-6 per edge.
TOLERANCE = 0.25


def test_1024_connections_all_succeed_and_spread_over_every_edge(lab: LabPlan) -> None:
    vip = f"{lab.vips[0]}:80"
    # A generous timeout: this test is about every connection succeeding and the spread, not latency.
    report = probe_from_node(E2E_LAB, "client1", vip, CONNECTIONS, timeout=10.0)
    failures = [f.error for f in report.fetches if f.error]
    assert failures == [], f"{len(failures)} of {CONNECTIONS} connections failed, e.g. {failures[:3]}"
    ports = {f.source_port for f in report.fetches}
    assert len(ports) == CONNECTIONS, "every connection must use its own source port"
    per_edge = report.per_edge()
    edges = [n.name for n in lab.nodes_with_role("edge")]
    assert set(per_edge) == set(edges), f"served by {dict(per_edge)}"
    expected = CONNECTIONS / len(edges)
    for edge in edges:
        share = per_edge[edge]
        assert abs(share - expected) <= TOLERANCE * expected, (
            f"{edge} served {share}, expected {expected:.0f} ±25%"
        )


def test_client2_reaches_the_vip(lab: LabPlan) -> None:
    report = probe_from_node(E2E_LAB, "client2", f"{lab.vips[0]}:80", 20)
    assert [f.error for f in report.fetches if f.error] == []
    assert set(report.per_edge()) <= {n.name for n in lab.nodes_with_role("edge")}


def test_router_holds_one_multipath_route_over_every_edge(lab: LabPlan) -> None:
    router = lab.nodes["router"]
    with IPRoute(netns=router.netns) as ipr:
        routes = [r for r in ipr.get_routes(family=socket.AF_INET) if r.get("RTA_DST") == "198.51.100.0"]
        (route,) = routes
        assert route["dst_len"] == 24
        hops = {h.get("RTA_GATEWAY") for h in route.get("RTA_MULTIPATH")}
    assert hops == {i.peer_address for i in router.interfaces if i.peer_node.startswith("edge")}


def test_root_namespace_has_no_route_to_lab_prefixes(lab: LabPlan, root_routes_before_lab: set) -> None:
    # Routes the host had before the lab (e.g. a host uplink that happens to sit in 192.0.2.0/24) are its own.
    added = root_routes() - root_routes_before_lab
    offending = [
        f"{dst}/{length}"
        for dst, length, _, _ in added
        if length
        and any(IPv4Network(f"{dst}/{length}", strict=False).overlaps(p) for p in DESIGN_RANGES.values())
    ]
    assert offending == [], f"the lab added routes for its prefixes in the root namespace: {offending}"


def test_no_link_joins_the_lab_to_the_root_namespace(lab: LabPlan) -> None:
    # Every namespace of the lab: the nodes', and those the agents create (tenants on each edge).
    names = namespaces.list_with_prefix(lab.netns_prefix)
    assert set(lab.namespaces()) < set(names)
    fds = {name: os.open(f"/run/netns/{name}", os.O_RDONLY) for name in names}
    try:
        with IPRoute() as root:
            root_ids = {root.get_netnsid(fd=fd)["nsid"] for fd in fds.values()} - {None, 0xFFFFFFFF, -1}
            crossing = [
                link.get("ifname") for link in root.get_links() if link.get("IFLA_LINK_NETNSID") in root_ids
            ]
        assert crossing == [], f"root-namespace links with a peer inside the lab: {crossing}"
        for name in names:
            with IPRoute(netns=name) as ipr:
                ids = {ipr.get_netnsid(fd=fd)["nsid"]: other for other, fd in fds.items() if other != name}
                for link in ipr.get_links():
                    peer_ns = link.get("IFLA_LINK_NETNSID")
                    # A bridge (the edges' backplane) has no peer; its ports are veths, checked themselves.
                    if (
                        link.get("ifname") == "lo"
                        or link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge"
                    ):
                        continue
                    assert peer_ns in ids, f"{name}/{link.get('ifname')} has its peer outside the lab"
    finally:
        for fd in fds.values():
            os.close(fd)


def test_second_up_changes_nothing(lab: LabPlan) -> None:
    console = Console(stderr=True, quiet=True)
    result = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=E2E_LAB, console=console)
    assert result.changed is False
    assert lab_api.status(E2E_LAB).healthy


def test_supervisor_restarts_a_service_that_dies(lab: LabPlan) -> None:
    before = lab_api.status(E2E_LAB)
    edge1 = next(n for n in before.nodes if n.name == "edge1")
    pid = edge1.services["http"]
    assert pid is not None
    os.kill(pid, 9)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = next(n for n in lab_api.status(E2E_LAB).nodes if n.name == "edge1").services["http"]
        if now not in (None, pid):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the supervisor did not restart edge1's http service within 10 s")
    lab_api.wait_ready(E2E_LAB)
    report = probe_from_node(E2E_LAB, "client1", f"{lab.vips[0]}:80", 64)
    assert [f.error for f in report.fetches if f.error] == []
    assert "edge1" in report.per_edge()
