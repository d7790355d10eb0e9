"""DoS mitigation's metric families: the `stats` map, decoded as the program's own verdicts and the
rules' counters (one slot per rule, labelled by the rule's name and kind). Served by the XDP agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgesim.metrics.families import Family, Sample, Source
from edgesim.mitigation import layout

# The verdict slots' label values (layout.VERDICT_SLOTS says what each means).
VERDICT_LABELS = {
    layout.SLOT_PASS: "passed",
    layout.SLOT_MALFORMED: "malformed",
    layout.SLOT_NOT_IPV4: "not_ipv4",
    layout.SLOT_COOKIE_SENT: "cookie_sent",
    layout.SLOT_COOKIE_ACK_OK: "cookie_ack_ok",
    layout.SLOT_COOKIE_ACK_BAD: "cookie_ack_bad",
    layout.SLOT_COOKIE_FLOW: "cookie_flow",
    layout.SLOT_CONTROL: "control",
}

VERDICTS = Family(
    "edgesim_xdp_ddos_verdicts_total",
    "Packets by the DoS program's own verdict (map stats, verdict slots).",
    ("verdict",),
)
RULE_PACKETS = Family(
    "edgesim_xdp_ddos_rule_packets_total",
    "Packets matched by each mitigation rule (map stats, rule slots).",
    ("rule", "kind"),
)
RULE_BYTES = Family(
    "edgesim_xdp_ddos_rule_bytes_total",
    "Bytes matched by each mitigation rule (map stats, rule slots).",
    ("rule", "kind"),
)
FAMILIES = (VERDICTS, RULE_PACKETS, RULE_BYTES)


def source(stats: Callable[[], dict[str, Any]]) -> Source:
    """The families, read from the agent's `stats()` (verdict and rule counters by slot)."""

    def read() -> Iterator[Sample]:
        counters = stats()
        for slot, name in layout.VERDICT_SLOTS.items():
            yield VERDICTS.name, (VERDICT_LABELS[slot],), counters["verdicts"][name][0]
        for rule in counters["rules"]:
            labels = (rule["name"], rule["kind"])
            yield RULE_PACKETS.name, labels, rule["packets"]
            yield RULE_BYTES.name, labels, rule["bytes"]

    return Source(FAMILIES, read)
