"""In the VM's guest (run by the VM job, by path): one bounded UDP flood, rate-limited in XDP and counted.

The e2e DoS tests (test_ddos.py) need a host's packet rate: 100,000 packets or more, 2,500 requests during
the flood. A guest under QEMU's software emulation sends well under a hundredth of a host's rate (run 10:
1,470 packets a second; the host: 590,000), and the lab's own per-source UDP limit (500 a second per source
at each edge) is then more than the flood: run 9 sent 58,287 packets in a minute, ECMP spread them over
four edges, each saw ~250 a second and stopped none (run 8, four times faster, had about half stopped).
So for this test the rule is set to the guest's scale, GUEST_UDP_RATE a second per source at each edge,
through the same rule store `invoke mitigate` uses, and the flood is judged as a rate limit: what the
edges' XDP passed is at most what the limit allows over the flood's window, plus client1's requests and
the lab's other traffic (measured just before), with MARGIN for the noise in that; the rest is stopped
and counted; client1's requests during the flood are all answered. The name keeps it out of the host
suites (they run test_ddos.py instead).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edgesim.mitigation import control
from edgesim.mitigation.rules import RULE_ADAPTER
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.e2e.conftest import E2E_LAB
from tests.e2e.test_ddos import Background, Case, passed, stopped

FLOOD_SECONDS = 60.0  # at most: it stops once the requests are done
MIN_PACKETS = 5_000  # stopped at the edges at least: a flood, not a trickle
REQUESTS = 20
QUIET_SECONDS = 10.0  # the lab's own traffic through XDP, measured first
GUEST_UDP_RATE = 20  # packets a second per source at each edge, and as many in the burst
# client1's packets into the edges per request (SYN, ACKs, request, FIN), generously; not in the quiet count.
CLIENT_PACKETS_PER_REQUEST = 10
# The lab's other traffic varies from one window to the next (on the host, before client1's packets were
# counted: 1,097 passed against a sum of 949, with 57.5/s measured quiet): the bound is half again the
# sum. Without the limit the edges would pass the whole flood, tens of times more.
MARGIN = 1.5
RULE = "udp-per-source"
UDP_FLOOD = Case("udp-flood", [RULE])


@pytest.fixture
def guest_rate(lab: LabPlan, rules_restored: None) -> Iterator[int]:
    """The lab's per-source UDP limit at the guest's scale while the test runs (restored after)."""
    control.delete(E2E_LAB, RULE)
    rule = {
        "kind": "rate_limit",
        "match": "udp",
        "rate": GUEST_UDP_RATE,
        "burst": GUEST_UDP_RATE,
        "name": RULE,
    }
    control.add(E2E_LAB, RULE_ADAPTER.validate_python(rule))
    yield GUEST_UDP_RATE


def test_a_udp_flood_is_rate_limited_in_xdp_while_client1_is_served(lab: LabPlan, guest_rate: int) -> None:
    edges = len(lab.nodes_with_role("edge"))
    quiet = control.stats(E2E_LAB)
    time.sleep(QUIET_SECONDS)
    before = control.stats(E2E_LAB)
    other_per_s = passed(quiet, before) / QUIET_SECONDS

    started = time.monotonic()
    flood = Background(lab, UDP_FLOOD.kind, FLOOD_SECONDS)
    flood.start()
    time.sleep(5.0)  # the flood is under way before the requests start
    load = probe_from_node(E2E_LAB, "client1", f"{lab.vips[0]}:80", REQUESTS)
    flood.stop.set()
    report = flood.result()
    after = control.stats(E2E_LAB)
    window = time.monotonic() - started

    blocked, through = stopped(before, after, UDP_FLOOD), passed(before, after)
    # One source (the attacker's address): each edge lets `rate` a second and one burst through.
    limit = edges * (guest_rate * window + guest_rate)
    allowed = MARGIN * (limit + REQUESTS * CLIENT_PACKETS_PER_REQUEST + other_per_s * window)
    counts = (
        f"{report.packets} sent by the attacker in {window:.0f} s; the edges' XDP stopped {blocked}"
        f" and passed {through} (the limit lets {limit:.0f} through,"
        f" the lab's other traffic was {other_per_s:.1f}/s; at most {allowed:.0f} allowed)"
    )
    assert blocked >= MIN_PACKETS, counts
    assert through <= allowed, counts
    assert [f.error for f in load.fetches if f.error] == [], load.summary()
    print(counts)  # the figures, in the VM job's log (-rA shows a passing test's output)
