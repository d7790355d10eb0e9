"""Legitimate DNS load: queries at a steady rate from a lab node, each from a fresh socket (a new source port,
as a resolver does), with whether and how fast each was answered.

`query_from_node` runs in the calling thread, moved into the node's namespace for the run; run one thread
per client to load the lab from several at once.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.rcode

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import LabPlan

PORT = 53
# At most this many queries per second, and this long a run, whatever is asked.
MAX_RATE = 2000
MAX_SECONDS = 120


@dataclass
class DnsProbeReport:
    """One client's run: queries sent, the latencies of those answered right, and the wrong answers."""

    node: str
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wrong: int = 0  # answered, but not with the expected address

    @property
    def answered(self) -> int:
        """Queries that got the right answer in time."""
        return len(self.latencies_ms)

    @property
    def answered_rate(self) -> float:
        """Share of queries answered (1.0 when none were sent)."""
        return self.answered / self.sent if self.sent else 1.0

    def latency_ms(self, quantile: float) -> float:
        """Latency quantile (0-1) of the answered queries, in ms."""
        values = sorted(self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(quantile * len(values)))]


def merged(reports: list[DnsProbeReport]) -> DnsProbeReport:
    """Several clients' runs as one."""
    total = DnsProbeReport(node="+".join(r.node for r in reports))
    for report in reports:
        total.sent += report.sent
        total.wrong += report.wrong
        total.latencies_ms += report.latencies_ms
    return total


def query_from_node(
    plan: LabPlan,
    node: str,
    server: str,
    name: str,
    expect: str,
    rate: float,
    seconds: float,
    timeout: float = 2.0,
) -> DnsProbeReport:
    """Send `rate` queries per second for `seconds` from `node` to server:53; wait `timeout` for each."""
    if not 0 < rate <= MAX_RATE or not 0 < seconds <= MAX_SECONDS:
        raise EdgesimError(
            Problem("dns probe", f"rate {rate}/s for {seconds} s", f"at most {MAX_RATE}/s, {MAX_SECONDS} s")
        )
    report = DnsProbeReport(node=node)
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, float] = {}  # socket -> when its query left
    interval, started = 1.0 / rate, time.monotonic()
    count = int(rate * seconds)
    with runtime.backend(plan.lab).enter(plan.nodes[node]):
        while report.sent < count or pending:
            now = time.monotonic()
            if report.sent < count and now >= started + report.sent * interval:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.sendto(dns.message.make_query(name, "A").to_wire(), (server, PORT))
                pending[sock] = time.monotonic()
                selector.register(sock, selectors.EVENT_READ)
                report.sent += 1
                continue
            next_send = started + report.sent * interval if report.sent < count else now + timeout
            for key, _ in selector.select(max(0.0, min(next_send - now, 0.05))):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                _collect(report, sock, pending.pop(sock), expect)
                selector.unregister(sock)
                sock.close()
            for sock, sent_at in list(pending.items()):
                if time.monotonic() - sent_at > timeout:  # unanswered: lost somewhere on the way
                    del pending[sock]
                    selector.unregister(sock)
                    sock.close()
    selector.close()
    return report


def _collect(report: DnsProbeReport, sock: socket.socket, sent_at: float, expect: str) -> None:
    """Read one answer and count it as answered (the expected A record) or wrong."""
    elapsed_ms = (time.monotonic() - sent_at) * 1000
    try:
        answer = dns.message.from_wire(sock.recv(4096))
    except (OSError, dns.exception.DNSException):
        report.wrong += 1
        return
    addresses = [item.address for rrset in answer.answer for item in rrset if hasattr(item, "address")]
    if answer.rcode() == dns.rcode.NOERROR and expect in addresses:
        report.latencies_ms.append(elapsed_ms)
    else:
        report.wrong += 1
