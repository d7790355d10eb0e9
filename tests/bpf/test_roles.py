"""Node roles through the backend, as root: `teardown` undoes what `configure` did, on real namespaces."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.backends import get_backend
from edgesim.bpf import loader
from edgesim.load import parse_topology
from edgesim.nodes import role_for
from edgesim.plan import LabPlan, build_plan
from tests.conftest import TEST_PREFIX, require_root

pytestmark = pytest.mark.root
LAB = f"{TEST_PREFIX}roles"
TOPOLOGY = f"""
lab: {LAB}
routing: static
vips: [{{address: 198.51.100.10}}]
nodes:
  router: {{role: router}}
  edge1: {{role: edge}}
  client1: {{role: host}}
"""


def snapshot(ipr: IPRoute) -> tuple[set, set, set]:
    """(addresses, main-table routes, interfaces that are up) of one namespace, loopback's 127/8 aside."""
    addresses = {
        (a["index"], a.get("IFA_ADDRESS"), a["prefixlen"])
        for a in ipr.get_addr(family=socket.AF_INET)
        if not a.get("IFA_ADDRESS", "").startswith("127.")
    }
    routes = {
        (r.get("RTA_DST") or "0.0.0.0", r["dst_len"])
        for r in ipr.get_routes(family=socket.AF_INET, table=254)
    }
    up = {link.get("ifname") for link in ipr.get_links() if link.get("operstate") == "UP"}
    return addresses, routes, up


@pytest.fixture
def built() -> Iterator[LabPlan]:
    """The nodes and links of a three-node lab, made by the netns backend; destroyed afterwards."""
    require_root()
    plan = build_plan(parse_topology(TOPOLOGY))
    backend = get_backend("netns")
    backend.destroy(LAB, f"{LAB}-")
    try:
        for node in plan.nodes.values():
            backend.create_node(node)
        for link in plan.links:
            backend.create_link(plan, link)
        yield plan
    finally:
        backend.destroy(LAB, f"{LAB}-")
        assert namespaces.list_with_prefix(f"{LAB}-") == []


@pytest.mark.parametrize("name", ["router", "edge1", "client1"])
def test_teardown_undoes_configure(built: LabPlan, name: str) -> None:
    backend = get_backend("netns")
    node = built.nodes[name]
    with backend.netlink(node) as ipr:
        fresh = snapshot(ipr)
    role = role_for(built, node, backend)
    role.prepare()
    role.configure()
    with backend.netlink(node) as ipr:
        configured = snapshot(ipr)
    # configure did something real: every planned address is there, and every planned route.
    assert {address for _, address, _ in configured[0]} >= {i.address.split("/")[0] for i in node.interfaces}
    assert {f"{dst}/{length}" for dst, length in configured[1]} >= {r.dst for r in node.routes}
    for ifname in node.xdp_pass:
        assert loader.xdp_info(node.netns, ifname) is not None
    role.teardown()
    with backend.netlink(node) as ipr:
        assert snapshot(ipr) == fresh
    for ifname in node.xdp_pass:
        assert loader.xdp_info(node.netns, ifname) is None


def test_configure_is_idempotent_and_teardown_twice_is_harmless(built: LabPlan) -> None:
    backend = get_backend("netns")
    node = built.nodes["router"]
    role = role_for(built, node, backend)
    role.configure()
    role.configure()
    role.teardown()
    role.teardown()
    with backend.netlink(node) as ipr:
        assert snapshot(ipr)[0] == set()
