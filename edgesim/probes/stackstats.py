"""What a node's kernel stack saw: SNMP counters and TCP socket states, read inside the node's namespace."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

from edgesim import namespaces

TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}


def _parse_pairs(text: str) -> dict[str, int]:
    """/proc/net/snmp and netstat: pairs of header and value lines, e.g. `Udp: InDatagrams …`."""
    values: dict[str, int] = {}
    lines = text.splitlines()
    for header, row in zip(lines[::2], lines[1::2], strict=False):
        prefix, names = header.split(":", 1)
        _, numbers = row.split(":", 1)
        for name, number in zip(names.split(), numbers.split(), strict=False):
            values[f"{prefix}{name}"] = int(number)
    return values


def snmp(netns: str) -> dict[str, int]:
    """Every counter of /proc/net/snmp and netstat in the node, e.g. `UdpNoPorts`, `TcpExtSyncookiesSent`."""
    with namespaces.inside(netns):
        # thread-self: this thread is in the node's namespace, the rest of the process is not.
        base = Path("/proc/thread-self/net")
        return {**_parse_pairs((base / "snmp").read_text()), **_parse_pairs((base / "netstat").read_text())}


def _tcp_sockets(netns: str) -> list:
    # Imported here: the XDP agent reads only snmp(), and pyroute2 costs a process ~22 MB.
    from pyroute2 import DiagSocket
    from pyroute2.netlink.diag import SS_ALL

    with namespaces.inside(netns), DiagSocket() as diag:
        diag.bind()
        return list(diag.get_sock_stats(family=socket.AF_INET, states=SS_ALL))


def tcp_states(netns: str) -> Counter[str]:
    """How many TCP sockets (request sockets included) the node has in each state, via sock_diag."""
    return Counter(TCP_STATES.get(s["idiag_state"], str(s["idiag_state"])) for s in _tcp_sockets(netns))


def peers_in_state(netns: str, state: str) -> Counter[str]:
    """The remote addresses of the node's TCP sockets in one state (e.g. who has a SYN_RECV socket)."""
    return Counter(s["idiag_dst"] for s in _tcp_sockets(netns) if TCP_STATES.get(s["idiag_state"]) == state)
