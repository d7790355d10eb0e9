"""The dispatch table's rule (most specific prefix, then a specific port over all ports) and its edits."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgesim.dispatch.bindings import MAX_LABELS, Binding, BindingTable, Registration, choose
from edgesim.lab import REPO_ROOT
from edgesim.load import load_topology
from edgesim.plan import build_plan

SPECTRUM = Binding(label="spectrum", prefix=IPv4Network("198.51.100.64/26"))
WEB_A = Binding(label="web-a", prefix=IPv4Network("198.51.100.32/28"), port=80)
NARROW_ALL = Binding(label="narrow", prefix=IPv4Network("198.51.100.64/30"))
WIDE_80 = Binding(label="wide80", prefix=IPv4Network("198.51.100.0/24"), port=80)
TABLE = [SPECTRUM, WEB_A, NARROW_ALL, WIDE_80]


@pytest.mark.parametrize(
    ("address", "port", "protocol", "label"),
    [
        ("198.51.100.70", 4321, "tcp", "spectrum"),  # every port of the /26
        ("198.51.100.70", 80, "tcp", "spectrum"),  # the /26 is more specific than the /24's port 80
        ("198.51.100.65", 80, "tcp", "narrow"),  # the /30 beats both
        ("198.51.100.33", 80, "tcp", "web-a"),  # /28 port 80
        ("198.51.100.33", 81, "tcp", None),  # no binding: the kernel's own lookup
        ("198.51.100.10", 80, "tcp", "wide80"),
        ("198.51.100.70", 4321, "udp", None),  # bindings are per protocol
    ],
)
def test_the_most_specific_binding_wins(address: str, port: int, protocol: str, label: str | None) -> None:
    found = choose(TABLE, protocol, IPv4Address(address), port)
    assert (found.label if found else None) == label


def test_a_specific_port_beats_all_ports_on_the_same_prefix() -> None:
    same_prefix_80 = Binding(label="web", prefix=SPECTRUM.prefix, port=80)
    assert choose([SPECTRUM, same_prefix_80], "tcp", IPv4Address("198.51.100.70"), 80) == same_prefix_80
    assert choose([SPECTRUM, same_prefix_80], "tcp", IPv4Address("198.51.100.70"), 81) == SPECTRUM


@given(
    st.lists(
        st.builds(
            lambda length, port: Binding(label="l", prefix=IPv4Network(f"198.51.100.0/{length}"), port=port),
            st.integers(24, 32),
            st.one_of(st.none(), st.integers(1, 3)),
        ),
        max_size=6,
    ),
    st.integers(1, 3),
)
def test_the_chosen_binding_holds_the_address(bindings: list[Binding], port: int) -> None:
    found = choose(bindings, "tcp", IPv4Address("198.51.100.0"), port)
    holding = [b for b in bindings if b.port in (None, port)]
    assert (found is None) == (not holding)
    if found is not None:
        assert found.prefix.prefixlen == max(b.prefix.prefixlen for b in holding)


def test_edits_keep_label_ids_and_replace_the_same_binding() -> None:
    table = BindingTable().with_binding(SPECTRUM).with_binding(WEB_A)
    assert table.labels == {"spectrum": 0, "web-a": 1}
    moved = table.with_binding(Binding(label="web-a", prefix=SPECTRUM.prefix))  # same key, new label
    assert [b.label for b in moved.bindings] == ["web-a", "web-a"]
    assert moved.without_binding("tcp", WEB_A.prefix, 80).bindings == [moved.bindings[-1]]
    registered = table.with_registration(
        Registration(label="web-a", service="web-a", listen="127.0.0.1:7080")
    )
    assert registered.without_registration("web-a").registrations == []


def test_labels_are_bounded_by_the_socket_map() -> None:
    table = BindingTable(labels={f"l{i}": i for i in range(MAX_LABELS)})
    with pytest.raises(ValueError, match="at most"):
        table.with_label("one-more")


def test_the_default_lab_dispatches_inside_the_vip_pool() -> None:
    plan = build_plan(load_topology(REPO_ROOT / "topology" / "default.yml"))
    assert plan.dispatch is not None
    edge = plan.nodes["edge1"]
    for binding in plan.dispatch.table.bindings:
        assert binding.prefix.subnet_of(IPv4Network("198.51.100.0/24"))
        assert str(binding.prefix) in edge.loopback  # local on the edge: the socket lookup sees it
    assert "198.51.100.0/24" in edge.anycast  # announced by every edge, routed to them by the router
    assert {s.name for s in edge.services} >= {"dispatch", "spectrum", "web-a", "web-b"}
