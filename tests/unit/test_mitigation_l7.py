"""Layer-7 rules: validation, their nftables JSON, and the diff that keeps what stays untouched."""

from __future__ import annotations

import pytest

from edgesim.errors import EdgesimError
from edgesim.mitigation import nftrules
from edgesim.mitigation.control import parse_rule
from edgesim.mitigation.rules import RULE_ADAPTER, build_rule_set


def rule(**fields):
    return RULE_ADAPTER.validate_python(fields)


BLOCK = rule(kind="blocklist", set_name="offenders", timeout_s=30)
LIMIT = rule(kind="conn_limit", vip="198.51.100.10", port=80, count=20, block_set="offenders", block_s=5)
RATE = rule(kind="conn_rate", vip="198.51.100.10", port=8080, rate=10, burst=5)
DNS_ANY = rule(kind="payload_match", proto="udp", dst_port=53, offset=25, hex="00ff")
HTTP_DELETE = rule(kind="payload_match", proto="tcp", dst_port=80, hex="44454c45544520")


def test_raw_payload_is_compared_four_bytes_at_a_time_in_bits() -> None:
    exprs = nftrules.raw_payload(2, bytes.fromhex("44454c45544520"))
    assert [e["match"]["left"]["payload"] for e in exprs] == [
        {"base": "ih", "offset": 16, "len": 32},
        {"base": "ih", "offset": 48, "len": 24},
    ]
    assert [e["match"]["right"] for e in exprs] == [0x44454C45, 0x544520]


def test_conn_limit_counts_connection_attempts_per_source_and_blocks_offenders() -> None:
    rules = build_rule_set([BLOCK, LIMIT])
    objects = nftrules.objects_for(rules.rules[1])
    assert objects.chain == nftrules.INPUT and list(objects.sets) == [f"c{rules.rules[1].slot}"]
    statements = [e for e in objects.rule if "set" in e]
    assert statements[0]["set"]["stmt"] == [{"ct count": {"val": 20, "inv": True}}]
    assert statements[1]["set"] == {
        "op": "update",
        "elem": {"elem": {"val": {"payload": {"protocol": "ip", "field": "saddr"}}, "timeout": 5}},
        "set": "@offenders",
    }
    assert objects.rule[-2:] == [{"counter": f"r{rules.rules[1].slot}"}, {"drop": None}]


def test_conn_rate_is_a_meter_whose_sources_are_forgotten() -> None:
    objects = nftrules.objects_for(build_rule_set([RATE]).rules[0])
    ((name, spec),) = objects.sets.items()
    assert spec["set"]["timeout"] == nftrules.METER_TIMEOUT_S
    (meter,) = [e for e in objects.rule if "set" in e]
    assert meter["set"]["set"] == f"@{name}"
    assert meter["set"]["stmt"] == [{"limit": {"rate": 10, "burst": 5, "per": "second", "inv": True}}]


def test_diff_adds_objects_before_rules_and_deletes_rules_before_objects() -> None:
    rules = build_rule_set([BLOCK, LIMIT, RATE, DNS_ANY])
    wanted = [nftrules.objects_for(r) for r in nftrules.l7_rules(rules)]
    empty = nftrules.Present({}, set(), set())
    commands = nftrules.diff(empty, wanted)
    kinds = [(op, next(iter(body))) for c in commands for op, body in c.items()]
    assert kinds.index(("add", "set")) < kinds.index(("add", "rule"))
    # All there: nothing to do, so counters, meters and blocked sources keep their state.
    present = nftrules.Present(
        {w.comment: (w.chain, i) for i, w in enumerate(wanted)},
        {n for w in wanted for n in w.sets},
        {w.counter for w in wanted},
    )
    assert nftrules.diff(present, wanted) == []
    # One rule removed: its rule by handle, then its meter and counter; nothing else.
    fewer = [w for w in wanted if w.slot != rules.find(RATE.label()).slot]
    gone = nftrules.diff(present, fewer)
    assert [next(iter(c["delete"])) for c in gone] == ["rule", "set", "counter"]
    assert gone[0]["delete"]["rule"]["chain"] == nftrules.INPUT


def test_a_changed_rule_gets_a_new_identity() -> None:
    one = build_rule_set([DNS_ANY]).rules[0]
    other = build_rule_set(
        [rule(kind="payload_match", proto="udp", dst_port=53, offset=25, hex="0010")]
    ).rules[0]
    assert one.slot == other.slot and nftrules.digest(one) != nftrules.digest(other)


def test_only_the_l7_kinds_go_to_nftables() -> None:
    rules = build_rule_set([rule(kind="malformed"), DNS_ANY, rule(kind="drop_src", prefix="100.127.0.0/16")])
    assert [r.rule.kind for r in nftrules.l7_rules(rules)] == ["payload_match"]


def test_a_rule_naming_a_missing_blocklist_is_unresolved() -> None:
    assert build_rule_set([LIMIT]).unresolved() == ["conn_limit 198.51.100.10:80: no blocklist 'offenders'"]
    assert build_rule_set([BLOCK, LIMIT]).unresolved() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "conn_limit", "vip": "198.51.100.10", "port": 80, "count": None}, "--count"),
        ({"kind": "payload_match", "proto": "udp", "dst_port": 53, "hex": "0g"}, "--hex"),
        ({"kind": "blocklist", "set_name": "Bad-Name"}, "--set-name"),
        (
            {"kind": "conn_rate", "vip": "198.51.100.10", "port": 80, "rate": 5, "burst": 5, "block_s": 3},
            "block_set",
        ),
    ],
)
def test_bad_l7_options_name_the_option(fields: dict, message: str) -> None:
    with pytest.raises(EdgesimError) as err:
        parse_rule(fields)
    assert message in str(err.value) and "Traceback" not in str(err.value)
