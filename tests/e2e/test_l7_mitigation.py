"""Layer-7 mitigation in nftables, end to end: rules added with the mitigation API on every edge, real
connections and queries from the lab's hosts, asserting on the edges' sockets, stacks and counters."""

from __future__ import annotations

import errno
import resource
import socket
import struct
import time

from edgesim import namespaces
from edgesim.dns import control as dns_control
from edgesim.mitigation import control
from edgesim.mitigation.rules import RULE_ADAPTER
from edgesim.plan import LabPlan
from edgesim.probes import stackstats
from edgesim.traffic.http_probe import probe_from_node
from edgesim.waiting import wait_until
from tests.e2e.conftest import E2E_LAB

IDLE_CONNECTIONS = 500  # the slowloris attack: idle connections from one source
LIMIT = 20  # concurrent connections per source, per edge
MIN_SUCCESS = 0.999
QUERIES = 40  # of each kind
BLOCK_S = 3


def add(**fields: object) -> None:
    control.add(E2E_LAB, RULE_ADAPTER.validate_python(fields))


def address_of(lab: LabPlan, node: str) -> str:
    return lab.nodes[node].interfaces[0].address.split("/")[0]


def edge_netns(lab: LabPlan) -> list[str]:
    return [n.netns for n in lab.nodes_with_role("edge")]


def established_from(lab: LabPlan, source: str) -> list[int]:
    """Per edge: the ESTABLISHED sockets whose peer is `source` (the edges' HTTP server's side)."""
    return [stackstats.peers_in_state(ns, "ESTABLISHED")[source] for ns in edge_netns(lab)]


def rule_packets(name: str) -> int:
    """Packets a rule counted, summed over the edges."""
    return sum(
        r["packets"] for edge in control.stats(E2E_LAB).values() for r in edge["rules"] if r["name"] == name
    )


def close_with_reset(socks: list[socket.socket]) -> None:
    """Close with a RST each (SO_LINGER 0): nothing is retransmitted afterwards."""
    for sock in socks:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()


def open_idle(
    lab: LabPlan, node: str, count: int, port: int = 80, header: bytes = b"GET / HTTP/1.1\r\nX-Slow: "
) -> list[socket.socket]:
    """`count` connections from `node` to the VIP, each sending `header` (half a request) and then nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    socks = []
    with namespaces.inside(lab.nodes[node].netns):
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((lab.vips[0], port))
            socks.append(sock)
    deadline = time.monotonic() + 10
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        still = []
        for sock in pending:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                sock.getpeername()
                if header:
                    sock.send(header)
            except OSError as e:
                if err or e.errno not in (errno.ENOTCONN, errno.EAGAIN):
                    continue  # failed: it is simply not held
                still.append(sock)
        pending = still
        time.sleep(0.05)
    return socks


def test_slowloris_is_held_to_the_connection_limit_while_clients_are_served(
    lab: LabPlan, rules_restored: None
) -> None:
    attacker = address_of(lab, "attacker")
    add(kind="conn_limit", vip=lab.vips[0], port=80, count=LIMIT, name="slowloris")
    socks = open_idle(lab, "attacker", IDLE_CONNECTIONS)
    try:
        time.sleep(1.0)  # the handshakes that get through are complete on the edges
        held_before = established_from(lab, attacker)
        # client1 is a source too: 8 at a time keeps it (with its closing connections) far below the limit.
        load = probe_from_node(E2E_LAB, "client1", f"{lab.vips[0]}:80", 2000, 8, hold=False)
        held_after = established_from(lab, attacker)
        dropped = rule_packets("slowloris")
    finally:
        close_with_reset(socks)
        # Nothing of the attack may outlive the test: a refused connection closed with a FIN would be
        # retransmitted for minutes, pass synproxy's cookie check again and, the rule gone, reach the server.
        wait_until(lambda: sum(established_from(lab, attacker)) == 0, timeout=10, interval=0.2)
    print(f"attacker's connections held per edge: {held_before} → {held_after}; limit drops {dropped}")
    print(load.summary())
    assert all(n <= LIMIT for n in held_before + held_after), (held_before, held_after)
    # The limit admits up to LIMIT per edge, and the rest were attempts the rule refused.
    assert sum(held_before) >= LIMIT, held_before
    assert dropped >= IDLE_CONNECTIONS - sum(held_before), dropped
    assert load.success_rate >= MIN_SUCCESS, load.summary()


QTYPES = {"A": 1, "ANY": 255}


def dns_query(qtype: str, ident: int = 0x1234) -> bytes:
    """A DNS query for example.com.: header, name, type, class IN (RFC 1035 4.1)."""
    # "example.com." takes 13 bytes after the 12-byte header, so the query type sits at payload offset 25.
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    name = b"".join(bytes([len(label)]) + label.encode() for label in ("example", "com")) + b"\0"
    return header + name + struct.pack("!HH", QTYPES[qtype], 1)


def http_answers(lab: LabPlan, request: bytes) -> bool:
    """Whether the VIP answers one HTTP request from client1 within 1.5 s."""
    with namespaces.inside(lab.nodes["client1"].netns):
        sock = socket.create_connection((lab.vips[0], 80), timeout=2)
    try:
        sock.settimeout(1.5)
        sock.sendall(request)
        return sock.recv(100).startswith(b"HTTP/1.")
    except TimeoutError:
        return False
    finally:
        sock.close()


def test_a_payload_rule_drops_only_the_matching_queries(lab: LabPlan, rules_restored: None) -> None:
    assert dns_query("ANY")[25:27] == b"\x00\xff" and dns_query("A")[25:27] == b"\x00\x01"
    add(kind="payload_match", proto="udp", dst_port=53, offset=25, hex="00ff", name="dns-any")
    add(
        kind="payload_match",
        proto="tcp",
        dst_port=80,
        hex="44454c45544520",
        vip=lab.vips[0],
        name="no-delete",
    )
    client1 = address_of(lab, "client1")
    before = _datagrams_from(client1)
    with namespaces.inside(lab.nodes["client1"].netns):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(QUERIES):
            for qtype in ("ANY", "A"):
                sender.sendto(dns_query(qtype), (lab.vips[0], 53))
                time.sleep(0.005)  # well below the per-source UDP limit of the XDP program
    finally:
        sender.close()
    time.sleep(0.3)
    # What got through reached the edges' DNS socket, whose filter counts every datagram per source (passed
    # or over its rate) before the server sees it.
    reached = _datagrams_from(client1) - before
    assert rule_packets("dns-any") == QUERIES
    assert QUERIES <= reached < 2 * QUERIES, reached
    get = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"
    delete = b"DELETE / HTTP/1.1\r\nHost: vip\r\n\r\n"
    assert all(http_answers(lab, get) for _ in range(10))
    assert not any(http_answers(lab, delete) for _ in range(3))
    assert rule_packets("no-delete") >= 3


def _datagrams_from(source: str) -> int:
    """Datagrams from `source` the edges' DNS socket filters have seen, passed or dropped, on all edges."""
    counts = [edge["sources"].get(source, {}) for edge in dns_control.counters(E2E_LAB).values()]
    return sum(c.get("passed", 0) + c.get("dropped", 0) for c in counts)


def test_an_offender_lands_in_the_blocklist_and_leaves_it_when_its_time_is_up(
    lab: LabPlan, rules_restored: None
) -> None:
    client2 = address_of(lab, "client2")
    add(kind="blocklist", set_name="offenders", timeout_s=60, name="offenders")
    add(
        kind="conn_limit",
        vip=lab.vips[0],
        port=80,
        count=2,
        block_set="offenders",
        block_s=BLOCK_S,
        name="two-each",
    )
    # 12 connections over 4 edges: at least one edge sees a third connection from client2. They send nothing:
    # a refused connection's data would be retransmitted, pass synproxy's cookie check again and renew the
    # block each time.
    socks = open_idle(lab, "client2", 12, header=b"")
    blocked_at = time.monotonic()

    def blocking_edges() -> list[str]:
        stats = control.stats(E2E_LAB)
        return [
            e for e, s in stats.items() if any(m["address"] == client2 for m in s["blocklists"]["offenders"])
        ]

    blocking = blocking_edges()
    assert blocking, "client2 exceeded the limit on some edge and must be in its blocklist"
    assert rule_packets("two-each") >= 1
    while blocking_edges():
        assert time.monotonic() - blocked_at < BLOCK_S + 3, "the blocklist entry must expire"
        time.sleep(0.1)
    left_after = time.monotonic() - blocked_at
    assert left_after >= BLOCK_S - 0.5, f"left the blocklist after {left_after:.1f} s"
    # Closed only now, with a reset each: while listed, their FINs would have been dropped, leaving their
    # connections established in conntrack, where the limit still counts them.
    close_with_reset(socks)
    # The limit goes before the check: back-to-back requests can leave two of client2's connections in
    # FIN_WAIT or LAST_ACK on one edge, which conntrack still counts, and a third would be refused and put
    # client2 in the set again. What is checked here is that the set's entry expired.
    control.delete(E2E_LAB, "two-each")
    after = probe_from_node(E2E_LAB, "client2", f"{lab.vips[0]}:80", 20, 1, hold=False)
    assert after.success_rate == 1.0, after.summary()
