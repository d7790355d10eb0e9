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


def added(ruleset: nft.Ruleset, kind: str) -> list[dict]:
    """The objects of one kind (chain, rule, map, counter) a ruleset adds."""
    return [c["add"][kind] for c in ruleset.commands if kind in c.get("add", {})]


def exprs(ruleset: nft.Ruleset, chain: str) -> list[list[dict]]:
    """The expressions of each rule of a chain, in order."""
    return [r["expr"] for r in added(ruleset, "rule") if r["chain"] == chain]


def keys(value: object) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def test_tenant_ruleset_is_stateless_counted_and_clamps_the_mss() -> None:
    ruleset = nft.tenant_ruleset(spec())
    assert "ct" not in keys(ruleset.commands), "no connection state: the other direction may go another edge"
    assert [{"notrack": None}] in exprs(ruleset, "prerouting")
    (forward,) = (c for c in added(ruleset, "chain") if c["name"] == "forward")
    assert forward["policy"] == "drop"
    assert exprs(ruleset, "forward")[-1] == [{"counter": "dropped"}, {"drop": None}]
    mss = {
        "mangle": {
            "key": {"tcp option": {"name": "maxseg", "field": "size"}},
            "value": {"rt": {"key": "mtu"}},
        }
    }
    assert any(mss in rule for rule in exprs(ruleset, "forward")), "tcp option maxseg size set rt mtu"
    accepted = [
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                "right": "203.0.113.100",
            }
        },
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}},
        {"counter": "accepted"},
        {"accept": None},
    ]
    assert accepted in exprs(ruleset, "forward"), (
        'ip daddr 203.0.113.100 tcp dport 80 counter name "accepted"'
    )
    # Only what goes towards the customer is marked (the GRE program tunnels nothing else).
    assert [{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 0x10001}}] in exprs(ruleset, "forward")
    assert {c["name"] for c in added(ruleset, "counter")} == {
        "accepted",
        "dropped",
        "syn",
        "refused",
        "outbound",
    }


def test_traffic_from_the_site_goes_to_the_internet_only() -> None:
    refused = [IPv4Network("198.18.0.0/15"), IPv4Network("203.0.113.0/24")]
    ruleset = nft.tenant_ruleset(spec(), refused)
    sets = {s["name"]: s for s in added(ruleset, "set")}
    assert sets["own"]["elem"] == [{"prefix": {"addr": "203.0.113.0", "len": 25}}]
    assert sets["refused"]["elem"] == [
        {"prefix": {"addr": "198.18.0.0", "len": 15}},
        {"prefix": {"addr": "203.0.113.0", "len": 24}},
    ]
    from_own = {
        "match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@own"}
    }
    assert exprs(ruleset, "forward")[0] == [from_own, {"jump": {"target": "from_site"}}], (
        "before any user rule"
    )
    to_refused = {
        "match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@refused"}
    }
    assert exprs(ruleset, "from_site") == [
        [to_refused, {"counter": "refused"}, {"drop": None}],
        [{"counter": "outbound"}, {"accept": None}],
    ]
    edge = nft.edge_ruleset([spec()], refused)
    from_tenant = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "t-*"}}
    assert exprs(edge, "input") == [[from_tenant, {"counter": "from_tenants_refused"}, {"drop": None}]]
    walls = {c["name"]: c["prio"] for c in added(edge, "chain") if c["name"] in ("input", "forward")}
    assert walls == {"input": -150, "forward": -150}, "before synproxy's input chain (priority filter)"
    assert exprs(edge, "forward") == [
        [from_tenant, to_refused, {"counter": "from_tenants_refused"}, {"drop": None}]
    ]


def test_a_drop_rule_counts_into_the_dropped_counter() -> None:
    ruleset = nft.tenant_ruleset(spec(rules=["tcp dport 22 drop"]))
    assert exprs(ruleset, "forward")[-2][-2:] == [{"counter": "dropped"}, {"drop": None}]


def test_rulesets_carry_a_digest_of_their_content() -> None:
    one, same, other = (
        nft.tenant_ruleset(spec()),
        nft.tenant_ruleset(spec()),
        nft.tenant_ruleset(spec(rules=[])),
    )
    assert one == same and one != other
    assert one.digest != other.digest
    assert added(one, "rule")[0]["comment"] == one.digest, "the table's first rule carries the digest"
    table = {"family": "ip", "name": "edgesim_tenant"}
    assert one.commands[:3] == [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
    ], "one transaction replaces the whole table"


def test_edge_ruleset_maps_each_prefix_to_its_tenant_mark() -> None:
    ruleset = nft.edge_ruleset([spec(), spec(name="globex", id=2, prefixes=["203.0.113.128/25"], rules=[])])
    (marks,) = added(ruleset, "map")
    assert (marks["type"], marks["map"], marks["flags"]) == ("ipv4_addr", "mark", ["interval"])
    assert marks["elem"] == [
        [{"prefix": {"addr": "203.0.113.0", "len": 25}}, 0x10001],
        [{"prefix": {"addr": "203.0.113.128", "len": 25}}, 0x10002],
    ]
    lookup = {"map": {"key": {"payload": {"protocol": "ip", "field": "daddr"}}, "data": "@marks"}}
    assert exprs(ruleset, "prerouting") == [[{"mangle": {"key": {"meta": {"key": "mark"}}, "value": lookup}}]]
    assert "elem" not in added(nft.edge_ruleset([]), "map")[0], "no tenants: an empty map"


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
