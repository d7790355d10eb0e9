"""Tenant pieces that need no root: the rule language, store records, derived names, rendered rulesets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from pydantic import ValidationError

from edgesim.errors import EdgesimError
from edgesim.load import parse_topology
from edgesim.plan import build_plan
from edgesim.plan.naming import tenant_edge_ifname as edge_ifname
from edgesim.plan.naming import tenant_netns
from edgesim.tenants import nft
from edgesim.tenants.rules import RuleError, parse_rule
from edgesim.tenants.spec import TenantSpec, veth_addresses


@pytest.mark.parametrize(
    ("text", "canonical", "nft_matches"),
    [
        (
            "ip daddr 203.0.113.100 tcp dport 20-21 accept",
            "ip daddr 203.0.113.100 tcp dport 20-21 accept",
            "ip daddr 203.0.113.100 tcp dport 20-21",
        ),
        ("accept", "accept", ""),
        ("ip protocol icmp accept", "ip protocol icmp accept", "ip protocol icmp"),
        (
            "tcp dport { 80, 443 } ip saddr 100.64.0.0/10 drop",
            "ip saddr 100.64.0.0/10 tcp dport { 80, 443 } drop",
            "ip saddr 100.64.0.0/10 tcp dport { 80, 443 }",
        ),
        ("udp sport 53 udp dport 1024-65535 accept", "udp sport 53 udp dport 1024-65535 accept", None),
        ("ip daddr 203.0.113.0/25 accept", "ip daddr 203.0.113.0/25 accept", None),
    ],
)
def test_rules_parse_to_one_canonical_spelling(text: str, canonical: str, nft_matches: str | None) -> None:
    rule = parse_rule(text)
    assert rule.text() == canonical
    assert parse_rule(canonical) == rule, "the canonical spelling parses back to the same rule"
    if nft_matches is not None:
        assert rule.nft_matches() == nft_matches


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the rule is empty"),
        ("tcp dport 80", "a rule ends with accept or drop, not '80'"),
        ("tcp dport 80 allow", "a rule ends with accept or drop, not 'allow'"),
        ("tcp port 80 accept", "'tcp' is followed by sport or dport, not 'port'"),
        ("tcp dport 80 udp sport 1 accept", "a rule matches one protocol, not both tcp and udp"),
        (
            "ip daddr 10.0.0.1/8 accept",
            "'10.0.0.1/8' is not an IPv4 address or network (host bits must be zero)",
        ),
        ("tcp dport 0 accept", "'0' is not a port range within 1-65535"),
        ("tcp dport 90-80 accept", "'90-80' is not a port range within 1-65535"),
        ("tcp dport http accept", "'http' is not a port or a port range"),
        ("ip daddr 203.0.113.1 ip daddr 203.0.113.2 accept", "'daddr' is given twice"),
        ("ip protocol gre accept", "unknown protocol 'gre' (tcp, udp or icmp)"),
        ("ct state established accept", "unexpected 'ct'"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert str(caught.value) == message


def spec(**changes: object) -> TenantSpec:
    fields = {
        "name": "acme",
        "id": 1,
        "prefixes": ["203.0.113.0/25"],
        "site": "100.64.0.7",
        "rules": ["tcp dport { 80 } ip daddr 203.0.113.100 accept"],
    }
    return TenantSpec.model_validate({**fields, **changes})


def test_store_records_keep_rules_in_canonical_spelling() -> None:
    assert spec().rules == ["ip daddr 203.0.113.100 tcp dport 80 accept"]
    assert (spec().mark, spec().table, spec().rule_priority) == (0x10001, 10001, 10001)


@pytest.mark.parametrize(
    "changes",
    [{"name": "Acme"}, {"id": 0}, {"id": 128}, {"prefixes": []}, {"site": "x"}, {"rules": ["accept all"]}],
)
def test_store_records_are_validated(changes: dict) -> None:
    with pytest.raises(ValidationError):
        spec(**changes)


def test_names_and_addresses_derived_from_a_tenant() -> None:
    assert tenant_netns("pop", "edge1", "acme") == "pop-edge1-acme"
    assert edge_ifname("acme") == "t-acme"
    long = edge_ifname("averyverylongname")
    assert len(long) == 15 and long.startswith("t-averyve") and long == edge_ifname("averyverylongname")
    assert edge_ifname("averyverylongnamf") != long
    assert veth_addresses(IPv4Network("198.18.2.0/24"), 1) == (
        IPv4Address("198.18.2.2"),
        IPv4Address("198.18.2.3"),
    )
    assert veth_addresses(IPv4Network("198.18.2.0/24"), 127)[1] == IPv4Address("198.18.2.255")


def test_tenant_ruleset_is_stateless_counted_and_clamps_the_mss() -> None:
    text = nft.tenant_ruleset(spec())
    assert "ct " not in text, "no connection state: the other direction may go through another edge"
    assert "notrack" in text
    assert "policy drop;" in text and text.rstrip().endswith('counter name "dropped" drop\n    }\n}')
    assert "tcp option maxseg size set rt mtu" in text
    assert 'ip daddr 203.0.113.100 tcp dport 80 counter name "accepted" accept' in text
    assert "meta mark set 0x10001" in text


def test_rulesets_carry_a_digest_of_their_content() -> None:
    one, same, other = (
        nft.tenant_ruleset(spec()),
        nft.tenant_ruleset(spec()),
        nft.tenant_ruleset(spec(rules=[])),
    )
    assert one == same and one != other
    assert nft._digest(one) != nft._digest(other)
    assert one.splitlines()[:3] == [
        "table ip edgesim_tenant",
        "delete table ip edgesim_tenant",
        "table ip edgesim_tenant {",
    ], "one transaction replaces the whole table"


def test_edge_ruleset_maps_each_prefix_to_its_tenant_mark() -> None:
    text = nft.edge_ruleset([spec(), spec(name="globex", id=2, prefixes=["203.0.113.128/25"], rules=[])])
    assert "203.0.113.0/25 : 0x10001, 203.0.113.128/25 : 0x10002" in text
    assert "meta mark set ip daddr map @marks" in text
    assert "elements" not in nft.edge_ruleset([]), "no tenants: an empty map"


TENANT_LAB = """
lab: t
vips: [{address: 198.51.100.10}]
pools: {infra: %s}
tenants:
  acme: {prefixes: [203.0.113.0/25], site: acme_gw}
nodes:
  router: {role: router}
  edge1: {role: edge}
  acme_gw: {role: customer, tenant: acme}
"""


def test_tenants_need_four_infra_blocks() -> None:
    assert build_plan(parse_topology(TENANT_LAB % "198.18.0.0/22")).tenancy is not None
    with pytest.raises(EdgesimError) as caught:
        build_plan(parse_topology(TENANT_LAB % "198.18.0.0/23"))
    assert "198.18.0.0/23 has no /24 left for customer sites" in str(caught.value)
