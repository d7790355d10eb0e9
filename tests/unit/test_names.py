"""Interface and namespace names: deterministic, distinct, and never over the kernel's 15 characters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgesim.model import NODE_NAME_MAX, Topology
from edgesim.plan import IFNAME_MAX, build_plan, ifname_for, netns_name

node_names = st.from_regex(rf"\A[a-z][a-z0-9_]{{0,{NODE_NAME_MAX - 1}}}\Z")


@given(node_names)
def test_ifname_fits_and_is_deterministic(name: str) -> None:
    assert len(ifname_for(name)) <= IFNAME_MAX
    assert ifname_for(name) == ifname_for(name)


@given(node_names, node_names)
def test_distinct_peers_get_distinct_ifnames(a: str, b: str) -> None:
    if a != b:
        assert ifname_for(a) != ifname_for(b)


def test_short_names_are_readable() -> None:
    assert ifname_for("edge1") == "eth-edge1"
    assert ifname_for("attacker") == "eth-attacker"
    assert netns_name("pop", "edge1") == "pop-edge1"


def test_longest_names_plan_within_limits() -> None:
    long_edges = {f"edge_{i:02d}_" + "x" * (NODE_NAME_MAX - 9): {"role": "edge"} for i in range(3)}
    topology = Topology.model_validate(
        {
            "lab": "l" * 12,
            "vips": [{"address": "198.51.100.10"}],
            "nodes": {"r" * NODE_NAME_MAX: {"role": "router"}, **long_edges},
        }
    )
    plan = build_plan(topology)
    for node in plan.nodes.values():
        for iface in node.interfaces:
            assert len(iface.name) <= IFNAME_MAX
        assert len({i.name for i in node.interfaces}) == len(node.interfaces)
