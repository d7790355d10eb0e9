"""The DNS zone's answers in wire format, and the records the planner gives a lab (no root, no network)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from edgesim.dns.zone import Zone
from edgesim.lab import REPO_ROOT
from edgesim.load import load_topology
from edgesim.plan import build_plan

ZONE = Zone("pop.example", {"www": "198.51.100.10", "acme-www": "203.0.113.100"})


def ask(name: str, rdtype: str = "A") -> dns.message.Message:
    wire = ZONE.answer(dns.message.make_query(name, rdtype).to_wire())
    assert wire is not None
    return dns.message.from_wire(wire)


def test_a_record_is_answered_authoritatively() -> None:
    reply = ask("www.pop.example")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert [item.address for item in reply.answer[0]] == ["198.51.100.10"]


def test_unknown_name_is_nxdomain_with_the_soa() -> None:
    reply = ask("nothing.pop.example")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_known_name_of_another_type_is_nodata() -> None:
    reply = ask("www.pop.example", "MX")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and reply.authority


def test_apex_has_soa_and_ns() -> None:
    assert ask("pop.example", "NS").answer[0][0].target.to_text() == "ns1.pop.example."
    assert ask("pop.example", "SOA").answer[0].rdtype == dns.rdatatype.SOA


def test_outside_the_zone_is_refused() -> None:
    assert ask("www.example.org").rcode() == dns.rcode.REFUSED


def test_what_is_not_a_query_gets_no_answer() -> None:
    assert ZONE.answer(b"\x00\x01garbage") is None
    reply = dns.message.make_response(dns.message.make_query("www.pop.example", "A"))
    assert ZONE.answer(reply.to_wire()) is None  # a response is never answered (no reflection loops)


def test_default_lab_names_its_vip_and_tenant_servers() -> None:
    plan = build_plan(load_topology(REPO_ROOT / "topology" / "default.yml"))
    assert plan.dns is not None
    assert plan.dns.records == {
        "ns1": "198.51.100.10",
        "www": "198.51.100.10",
        "vip1": "198.51.100.10",
        "acme-www": "203.0.113.100",
        "globex-www": "203.0.113.200",
    }
    assert set(plan.dns.sockets) == {"edge1", "edge2", "edge3", "edge4"}
    assert all(
        s.listens == [f"unix:dns-{e}.sock"]
        for e in plan.dns.sockets
        for s in [next(x for x in plan.nodes[e].services if x.name == "dns")]
    )
