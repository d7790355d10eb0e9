"""Rule sets (slots, names, conflicts) and their map contents, without a kernel."""

from __future__ import annotations

import sys
from ipaddress import IPv4Address, IPv4Network

import pytest

from edgesim.errors import EdgesimError
from edgesim.mitigation import layout, maps
from edgesim.mitigation.control import parse_rule
from edgesim.mitigation.rules import RULE_ADAPTER, build_rule_set


def rule(**fields):
    return RULE_ADAPTER.validate_python(fields)


def test_slots_are_stable_and_reused_lowest_first() -> None:
    rules = build_rule_set([rule(kind="drop_src", prefix="100.127.0.0/16"), rule(kind="malformed")])
    assert [r.slot for r in rules.rules] == [layout.FIRST_RULE_SLOT, layout.FIRST_RULE_SLOT + 1]
    fewer = rules.without("drop_src 100.127.0.0/16")
    again = fewer.with_rule(rule(kind="drop_src", prefix="100.126.0.0/16", name="new"))
    assert again.find("new").slot == layout.FIRST_RULE_SLOT
    assert again.find("malformed").slot == layout.FIRST_RULE_SLOT + 1


def test_conflicts_by_name_and_by_target() -> None:
    rules = build_rule_set([rule(kind="rate_limit", match="syn", rate=10, burst=5, name="syn")])
    assert "exists already" in rules.conflicts(rule(kind="malformed", name="syn"))
    assert "already covers" in rules.conflicts(rule(kind="rate_limit", match="syn", rate=99, burst=5))
    assert rules.conflicts(rule(kind="rate_limit", match="udp", rate=99, burst=5)) is None


def test_map_contents_use_network_byte_order_and_gcra() -> None:
    rules = build_rule_set(
        [
            rule(kind="drop_src", prefix="100.127.0.0/16"),
            rule(kind="syn_cookie", vip="198.51.100.10", port=80),
            rule(kind="rate_limit", match="udp", rate=1000, burst=10),
            rule(kind="malformed", fragments=False),
        ]
    )
    contents = maps.contents_for(rules)
    assert contents.sources == {
        IPv4Network("100.127.0.0/16"): layout.SrcRule(layout.FIRST_RULE_SLOT, layout.SRC_DROP)
    }
    ((cookie, _),) = contents.entries["cookie_vips"].items()
    assert cookie.vip.to_bytes(4, sys.byteorder) == IPv4Address("198.51.100.10").packed and cookie.port == 80
    udp = contents.rate_limits[layout.RATE_UDP]
    assert (udp.interval_ns, udp.tolerance_ns, udp.enabled) == (1_000_000, 9_000_000, 1)
    assert contents.rate_limits[layout.RATE_SYN].enabled == 0
    assert (contents.config.ip_options_slot, contents.config.fragments_slot) == (
        layout.FIRST_RULE_SLOT + 3,
        0,
    )


def test_command_line_rule_errors_name_the_option() -> None:
    with pytest.raises(EdgesimError) as caught:
        parse_rule({"kind": "drop_src", "prefix": "100.127.0.1/16"})
    assert str(caught.value.problems[0]).startswith("--prefix: ")
    with pytest.raises(EdgesimError) as caught:
        parse_rule({"kind": "drop_port", "proto": "udp", "src_port": None, "dst_port": None})
    assert "exactly one of src_port and dst_port" in str(caught.value)
    with pytest.raises(EdgesimError):
        parse_rule({"kind": "drop_everything"})
