"""In the VM's guest (run by path by the VM job): one bounded UDP flood, stopped in XDP and counted.

The e2e DoS tests (test_ddos.py) need a host's packet rate: 100,000 packets or more, 2,500 requests during
the flood. A guest under QEMU's software emulation answers twenty requests in half a minute, and its edges
counted only part of a flood as stopped (run 8: 244,226 packets sent, 134,279 stopped; that run did not
count where the rest went, the router's emulated forwarding being the likely place). So its smoke floods at
that scale, judged by what reached the edges: XDP's per-source UDP rule stops at least 95% of the packets
its program saw (stopped, against stopped + passed; BGP and BFD are counted apart), and client1's requests
during the flood are all answered. The name keeps it out of the host suites (they run test_ddos.py instead).
"""

from __future__ import annotations

import time

from edgesim.mitigation import control
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.e2e.conftest import E2E_LAB
from tests.e2e.test_ddos import MIN_STOPPED, Background, Case, passed, stopped

FLOOD_SECONDS = 60.0  # at most: it stops once the requests are done
MIN_PACKETS = 5_000  # stopped at the edges at least: a flood, not a trickle
REQUESTS = 20
UDP_FLOOD = Case("udp-flood", ["udp-per-source"])


def test_a_udp_flood_is_stopped_in_xdp_while_client1_is_served(lab: LabPlan) -> None:
    before = control.stats(E2E_LAB)
    flood = Background(lab, UDP_FLOOD.kind, FLOOD_SECONDS)
    flood.start()
    time.sleep(5.0)  # the flood is under way before the requests start
    load = probe_from_node(E2E_LAB, "client1", f"{lab.vips[0]}:80", REQUESTS)
    flood.stop.set()
    report = flood.result()
    after = control.stats(E2E_LAB)

    blocked = stopped(before, after, UDP_FLOOD)
    seen = blocked + passed(before, after)  # everything XDP judged but the lab's own BGP and BFD
    counts = f"{report.packets} sent by the attacker, {seen} seen by the edges' XDP, {blocked} stopped"
    assert blocked >= MIN_PACKETS, counts
    assert [f.error for f in load.fetches if f.error] == [], load.summary()
    assert blocked >= MIN_STOPPED * seen, counts
