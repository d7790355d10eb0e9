"""The tenant checks shared by `load` and `tenant add`, in the wording of each."""

from __future__ import annotations

from ipaddress import IPv4Network

from edgesim.tenants import validate

POOL = IPv4Network("203.0.113.0/24")


def lines(problems: list) -> list[str]:
    return [str(p) for p in problems]


def test_store_wording_names_the_values() -> None:
    wording = validate.store_wording("globex")
    taken = [(IPv4Network("203.0.113.0/25"), "acme")]
    prefixes = [IPv4Network("203.0.113.64/26"), IPv4Network("198.51.100.0/24")]
    assert lines(validate.check_prefixes(wording, "globex", prefixes, POOL, taken)) == [
        "tenant globex: 203.0.113.64/26: overlaps 203.0.113.0/25 of tenant acme"
        " (hint: every address belongs to one tenant)",
        "tenant globex: 198.51.100.0/24: is outside the tenant pool 203.0.113.0/24"
        " (hint: pick a prefix inside it)",
    ]


def test_topology_wording_names_the_paths() -> None:
    wording = validate.topology_wording("acme")
    prefixes = [IPv4Network("203.0.113.0/25"), IPv4Network("203.0.113.0/26")]
    assert lines(validate.check_prefixes(wording, "acme", prefixes, POOL, [])) == [
        "tenants.acme.prefixes[1]: 203.0.113.0/26 overlaps 203.0.113.0/25 of the same tenant"
        " (hint: every address belongs to one tenant)"
    ]


def test_each_other_tenant_is_named_once() -> None:
    taken = [(IPv4Network("203.0.113.0/26"), "a"), (IPv4Network("203.0.113.0/27"), "a"), (POOL, "b")]
    problems = validate.check_prefixes(validate.store_wording("c"), "c", [POOL], POOL, taken)
    assert [p.message for p in problems] == [
        "overlaps 203.0.113.0/26 of tenant a",
        "overlaps 203.0.113.0/24 of tenant b",
    ]


def test_rules_parse_and_stay_inside_the_prefixes() -> None:
    wording = validate.topology_wording("acme")
    rules = [
        "ip daddr 203.0.113.200 tcp dport 80 accept",
        "tcp dport 80 allow",
        "ip daddr 203.0.113.1 accept",
    ]
    problems = validate.check_rules(wording, rules, [IPv4Network("203.0.113.0/25")])
    assert [p.location for p in problems] == ["tenants.acme.firewall[0]", "tenants.acme.firewall[1]"]
    assert problems[0].message == "destination 203.0.113.200/32 is outside the tenant's prefixes"
    assert problems[1].message.startswith("cannot read rule 'tcp dport 80 allow': ")
