"""The node's kernel counters that tell the story of an attack: listen queue overflows, SYN cookies the
stack sent, socket and softirq drops. Read from /proc inside the node's namespace at each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from edgesim.metrics.families import Family, Sample, Source
from edgesim.probes import stackstats

# Family → the SNMP/netstat counter it exports (per network namespace, so per node).
SNMP_COUNTERS = {
    Family(
        "edgesim_kernel_tcp_listen_overflows_total",
        "Connections dropped: a listener's accept queue was full.",
    ): "TcpExtListenOverflows",
    Family(
        "edgesim_kernel_tcp_listen_drops_total", "SYNs and handshake ACKs a listener dropped, for any reason."
    ): "TcpExtListenDrops",
    Family(
        "edgesim_kernel_tcp_syncookies_sent_total",
        "SYN cookies the stack itself sent (its SYN queue overflowed).",
    ): "TcpExtSyncookiesSent",
    Family(
        "edgesim_kernel_tcp_syncookies_recv_total", "ACKs carrying a valid SYN cookie the stack accepted."
    ): "TcpExtSyncookiesRecv",
    Family(
        "edgesim_kernel_tcp_syncookies_failed_total", "ACKs whose SYN cookie the stack found invalid."
    ): "TcpExtSyncookiesFailed",
    Family(
        "edgesim_kernel_tcp_backlog_drops_total", "TCP segments dropped: a socket's backlog was full."
    ): "TcpExtTCPBacklogDrop",
    Family("edgesim_kernel_udp_rcvbuf_errors_total", "UDP datagrams dropped: a socket's buffer was full."): (
        "UdpRcvbufErrors"
    ),
    Family("edgesim_kernel_udp_no_ports_total", "UDP datagrams to a port nothing listens on."): "UdpNoPorts",
    Family("edgesim_kernel_ip_in_receives_total", "IPv4 packets the stack received (after XDP)."): (
        "IpInReceives"
    ),
}
SOFTNET_DROPPED = Family(
    "edgesim_kernel_softnet_dropped_total",
    "Packets dropped because a CPU's backlog queue was full (host-wide, not per node).",
    ("cpu",),
)
SOFTNET_SQUEEZED = Family(
    "edgesim_kernel_softnet_squeezed_total",
    "Times softirq receive processing ran out of budget with work left (host-wide, not per node).",
    ("cpu",),
)
FAMILIES = (*SNMP_COUNTERS, SOFTNET_DROPPED, SOFTNET_SQUEEZED)
SOFTNET_STAT = Path("/proc/net/softnet_stat")


def softnet() -> list[tuple[int, int]]:
    """(dropped, time_squeeze) per CPU from /proc/net/softnet_stat (hex columns 2 and 3)."""
    rows = [line.split() for line in SOFTNET_STAT.read_text().splitlines() if line.strip()]
    return [(int(row[1], 16), int(row[2], 16)) for row in rows]


def source(netns: str) -> Source:
    """The kernel families of the node whose namespace is `netns`."""

    def read() -> Iterator[Sample]:
        counters = stackstats.snmp(netns)
        for family, counter in SNMP_COUNTERS.items():
            yield family.name, (), counters.get(counter, 0)
        for cpu, (dropped, squeezed) in enumerate(softnet()):
            yield SOFTNET_DROPPED.name, (str(cpu),), dropped
            yield SOFTNET_SQUEEZED.name, (str(cpu),), squeezed

    return Source(FAMILIES, read)
