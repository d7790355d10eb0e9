"""In the VM's guest (run by path by the VM job): one bounded UDP flood, stopped in XDP and counted.

The e2e DoS tests (test_ddos.py) need a host's packet rate: 100,000 packets or more, 2,500 requests during
the flood. A guest under QEMU's software emulation sends about a thousand packets a second and answers
twenty requests in half a minute, so its smoke floods at that scale: XDP's per-source UDP rule on the edges
stops at least 95% of what the attacker's interface sent, and client1's requests during the flood are all
answered. The name keeps it out of the host suites (they run test_ddos.py instead).
"""

from __future__ import annotations

import time

from edgesim.mitigation import control
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.e2e.conftest import E2E_LAB
from tests.e2e.test_ddos import MIN_STOPPED, Background, Case, stopped

FLOOD_SECONDS = 60.0  # at most: it stops once the requests are done
MIN_PACKETS = 5_000  # what the guest's attacker sends in a few seconds
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

    assert report.packets >= MIN_PACKETS, f"the attacker sent only {report.packets} packets"
    assert [f.error for f in load.fetches if f.error] == [], load.summary()
    blocked = stopped(before, after, UDP_FLOOD)
    assert blocked >= MIN_STOPPED * report.packets, f"XDP stopped {blocked} of {report.packets} packets"
