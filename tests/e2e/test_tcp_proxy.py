"""The edges' TCP proxy, end to end: clients through the router to VIP:8080, proxied to the origin host.

Four connections from client1 run side by side (about 14 s): one goes idle and its client vanishes, one
has data in flight when its client vanishes, one reads at twice the minimum drain pace, one at half of it.
A vanished client is cut in the router (nftables drops that one connection both ways): the edge hears
nothing at all.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import pytest

from edgesim import namespaces
from edgesim.experiments.tcp_timeouts.path import PathControl
from edgesim.load import load_topology
from edgesim.plan import LabPlan, NodePlan
from edgesim.probes.sockdiag import NamespaceDiagSocket
from edgesim.probes.tcpinfo import tcp_info
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.traffic import attacks

PROXY = load_topology(DEFAULT_TOPOLOGY).proxy
assert PROXY is not None
USER_TIMEOUT_S = PROXY.effective_user_timeout_ms() / 1000
MIN_DRAIN = PROXY.min_drain_bytes_per_s
WINDOW_S = PROXY.drain_window_s
RUN_S = 3 * WINDOW_S + 2  # the slow reader must survive several full drain windows
FLOOD_S = 4.0  # the SYN flood between the two rounds of steady readers
CLIENT_RCVBUF = 16384  # a small receive buffer, so the reader's pace is what the proxy sees
SIOCOUTQNSD = 0x894B  # unsent bytes in a socket's send queue, straight from the kernel


@dataclass
class Flow:
    """A client connection through the proxy, and the edge sockets serving it."""

    sock: socket.socket
    port: int
    edge: NodePlan
    origin_port: int  # the edge's local port towards the origin
    quiet_since: (
        float  # monotonic time of the last exchange: the edge has heard nothing from the client since
    )
    events: dict[str, float] = field(default_factory=dict)
    received: int = 0
    error: str | None = None
    max_debt: float = 0.0  # the most the reader itself fell behind the minimum pace (client-side debt)


def _edge_sockets(edge: NodePlan) -> set[tuple[int, int]]:
    """(local port, remote port) of the edge's live TCP sockets (TIME-WAIT is closed for our purposes)."""
    diag = NamespaceDiagSocket(edge.netns)
    try:
        return {(m["idiag_sport"], m["idiag_dport"]) for m in diag.tcp() if m["idiag_state"] not in (6, 10)}
    finally:
        diag.close()


def _open_flow(lab: LabPlan, client: NodePlan) -> Flow:
    edges = lab.nodes_with_role("edge")
    before = {e.name: _edge_sockets(e) for e in edges}
    with namespaces.inside(client.netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    sock.settimeout(5)
    sock.connect((lab.vips[0], PROXY.port))
    sock.sendall(b"hello\n")
    assert sock.recv(100) == b"hello\n", "the proxy must relay to the origin and back"
    quiet_since = time.monotonic()
    port = sock.getsockname()[1]
    for edge in edges:
        new = _edge_sockets(edge) - before[edge.name]
        if (PROXY.port, port) in new:
            (origin_port,) = [local for local, remote in new if remote == PROXY.origin_port]
            return Flow(sock, port, edge, origin_port, quiet_since)
    raise AssertionError(f"no edge holds the connection from port {port}")


def _alive(flow: Flow) -> set[tuple[int, int]]:
    return _edge_sockets(flow.edge) & {(PROXY.port, flow.port), (flow.origin_port, PROXY.origin_port)}


def _wait_gone(flow: Flow, since: float, limit: float) -> None:
    while time.monotonic() - since < limit:
        if not _alive(flow):
            flow.events["gone"] = time.monotonic() - since
            return
        time.sleep(0.05)


def _vanish_idle(flow: Flow, cut: PathControl, address: str) -> None:
    cut.drop_flow(address, flow.port)
    # Keepalive and the user timeout count from the last packet the edge received, not from the cut.
    _wait_gone(flow, flow.quiet_since, USER_TIMEOUT_S + 5)


def _vanish_with_data_in_flight(flow: Flow, cut: PathControl, address: str) -> None:
    # 8 KiB fit in the initial window: all of it is in flight, nothing waits unsent, so the drain check has
    # nothing to judge and only TCP_USER_TIMEOUT can end it.
    flow.sock.sendall(b"send 8192 after 300\n")
    time.sleep(0.05)  # the command is through the proxy before the path goes
    cut.drop_flow(address, flow.port)
    started = time.monotonic()
    flow.events["data sent"] = 0.3
    _wait_gone(flow, started, USER_TIMEOUT_S + 5)


def _read_at(flow: Flow, rate: float, chunk: int = 1, look: bool = True) -> None:
    """Read at `rate` B/s for RUN_S, in reads of at least `chunk` bytes (up to 4 KiB).

    `look`: watch the edge's sockets every 250 ms (a sock_diag dump: heavy with many readers at once). The
    reader keeps its own debt at the minimum pace, as the proxy does, to show whether it kept the pace.
    """
    started = last = time.monotonic()
    flow.sock.sendall(b"send 1000000000\n")
    next_look = 0.0
    debt = 0.0
    try:
        while (elapsed := (now := time.monotonic()) - started) < RUN_S:
            debt += MIN_DRAIN * (now - last)
            last = now
            flow.max_debt = max(flow.max_debt, debt)
            # When the edge closes matters, not when the client notices: a reset only surfaces once the client
            # has read the data already in its receive buffer.
            if look and elapsed >= next_look and "edge closed" not in flow.events:
                if not _alive(flow):
                    flow.events["edge closed"] = elapsed
                next_look += 0.25
            behind = rate * elapsed - flow.received
            if behind < chunk:
                time.sleep(0.01)
                continue
            data = flow.sock.recv(int(min(behind, max(chunk, 4096))))
            if not data:
                flow.error = "end of file"
                break
            flow.received += len(data)
            debt = max(0.0, debt - len(data))
    except OSError as err:
        flow.error = f"{type(err).__name__}: {err}"
    flow.events["ended"] = time.monotonic() - started
    if flow.error:
        _wait_gone(flow, time.monotonic(), 2.0)


@pytest.fixture(scope="module")
def flows(lab: LabPlan) -> dict[str, Flow]:
    client = lab.nodes["client1"]
    address = client.interfaces[0].address.split("/")[0]
    cut = PathControl(lab.nodes["router"].netns, "proxycut")
    opened = {name: _open_flow(lab, client) for name in ("idle", "in flight", "2x pace", "half pace")}
    jobs = [
        threading.Thread(target=_vanish_idle, args=(opened["idle"], cut, address)),
        threading.Thread(target=_vanish_with_data_in_flight, args=(opened["in flight"], cut, address)),
        threading.Thread(target=_read_at, args=(opened["2x pace"], 2 * MIN_DRAIN)),
        threading.Thread(target=_read_at, args=(opened["half pace"], MIN_DRAIN / 2)),
    ]
    try:
        for job in jobs:
            job.start()
        for job in jobs:
            job.join()
        for name, flow in opened.items():
            flow.events["alive at the end"] = float(bool(_alive(flow)))
            print(
                f"proxy flow {name} via {flow.edge.name}: {flow.events}, {flow.received} bytes, {flow.error}"
            )
    finally:
        cut.restore()
        for flow in opened.values():
            flow.sock.close()
    return opened


def test_idle_connection_of_a_vanished_client_is_closed_at_the_user_timeout(flows: dict[str, Flow]) -> None:
    flow = flows["idle"]
    # Counted from the client's last packet: keepalive probes at 4, 6 and 8 s go unanswered; at 10 s the user
    # timeout has passed and both sockets abort. Never early (the client's last ACK may come a little after
    # our last read); up to 1.5 s late: four keepalive timers, each up to one timer-wheel granule (256 ms).
    assert "gone" in flow.events, f"edge sockets still there {USER_TIMEOUT_S + 5} s after the last exchange"
    assert USER_TIMEOUT_S - 0.1 <= flow.events["gone"] <= USER_TIMEOUT_S + 1.5, flow.events


def test_connection_with_data_in_flight_is_closed_at_the_user_timeout(flows: dict[str, Flow]) -> None:
    flow = flows["in flight"]
    # The origin's data leaves the edge 0.3 s after the cut; the user timeout counts from the first RTO
    # retransmission, about 2 RTOs (0.4 s) later on this kernel; then up to 1 s of timer and polling lateness.
    assert "gone" in flow.events, f"edge sockets still there {USER_TIMEOUT_S + 5} s after the cut"
    assert USER_TIMEOUT_S + 0.3 <= flow.events["gone"] <= USER_TIMEOUT_S + 0.3 + 0.5 + 1.0, flow.events


def test_slow_client_at_twice_the_minimum_pace_keeps_its_connection(flows: dict[str, Flow]) -> None:
    flow = flows["2x pace"]
    assert flow.error is None, f"cut after {flow.events['ended']:.1f} s: {flow.error}"
    assert "edge closed" not in flow.events and flow.events["alive at the end"] == 1.0
    # It really read at its pace the whole time (the proxy kept up with it).
    assert flow.received >= 0.9 * 2 * MIN_DRAIN * RUN_S


def test_client_below_the_minimum_pace_is_closed(flows: dict[str, Flow]) -> None:
    flow = flows["half pace"]
    assert flow.error is not None, "a client draining at half the minimum pace must be cut"
    closed_at = flow.events.get("edge closed")
    if closed_at is None and "gone" in flow.events:
        # The client met the reset before this test's next 250 ms look at the edge: the edge had closed both
        # sockets by the time the client's read failed.
        closed_at = flow.events["ended"]
    assert closed_at is not None, "the edge must close both sockets"
    # Judged after one full window of backlog; the client's first buffer fill may fall into the first window
    # and count as drained, so allow a second one (plus the 250 ms sampling of the proxy and of this test).
    assert WINDOW_S <= closed_at <= 2 * WINDOW_S + 0.5, flow.events


def test_tcp_info_offsets_match_the_kernel(lab: LabPlan) -> None:
    """tcpi_notsent_bytes as edgesim parses it equals SIOCOUTQNSD; the other fields equal sock_diag's."""
    node = lab.nodes["client2"]
    address = node.interfaces[0].address.split("/")[0]
    with namespaces.inside(node.netns):
        listener = socket.socket()
        sender = socket.socket()
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind((address, 0))
        listener.listen()
        sender.connect(listener.getsockname())
        receiver, _ = listener.accept()  # never reads: the window closes and data stays unsent
        sender.setblocking(False)
        try:
            while True:
                sender.send(b"u" * 65536)
        except BlockingIOError:
            pass
        time.sleep(0.3)
        info = tcp_info(sender)
        unsent = struct.unpack("i", fcntl.ioctl(sender.fileno(), SIOCOUTQNSD, b"\0" * 4))[0]
        assert info.notsent_bytes == unsent > 0
        diag = NamespaceDiagSocket(node.netns)
        try:
            port = sender.getsockname()[1]
            (msg,) = [m for m in diag.tcp() if m["idiag_sport"] == port]
        finally:
            diag.close()
        kernel = msg.get_attr("INET_DIAG_INFO")
        for ours, theirs in [
            ("state", "tcpi_state"),
            ("rto_us", "tcpi_rto"),
            ("snd_mss", "tcpi_snd_mss"),
            ("bytes_acked", "tcpi_bytes_acked"),
            ("bytes_sent", "tcpi_bytes_sent"),
            ("notsent_bytes", "tcpi_notsent_bytes"),
            ("snd_wnd", "tcpi_snd_wnd"),
            ("segs_out", "tcpi_segs_out"),
        ]:
            assert getattr(info, ours) == kernel[theirs], ours
        assert info.snd_wnd == 0 and info.state == 1  # ESTABLISHED, zero window
        receiver.close()
    finally:
        sender.close()
        listener.close()


# Issue 17: readers at a steady 20,000 B/s (1.2x the minimum) were cut after about 6 s, most of them right
# after a SYN flood, because the pace was a rate between two samples a window apart and the receiver's window
# opens in steps. Six such readers (each reading in its own chunk size, so their steps fall differently)
# and one at half the pace, before and after a SYN flood.
STEADY_CHUNKS = (256, 512, 1024, 4096, 8192, 16384)


def _round_of_readers(lab: LabPlan) -> dict[str, Flow]:
    client = lab.nodes["client1"]
    readers = {f"1.2x by {chunk} B": (1.2 * MIN_DRAIN, chunk, False) for chunk in STEADY_CHUNKS}
    readers["0.5x"] = (MIN_DRAIN / 2, 1, False)
    opened = {name: _open_flow(lab, client) for name in readers}
    jobs = [threading.Thread(target=_read_at, args=(opened[name], *readers[name])) for name in readers]
    try:
        for job in jobs:
            job.start()
        for job in jobs:
            job.join()
        for name, flow in opened.items():
            flow.events["alive at the end"] = float(bool(_alive(flow)))
            print(
                f"reader {name} via {flow.edge.name}: {flow.events}, {flow.received} bytes, {flow.error}, "
                f"its own debt at most {flow.max_debt:.0f} B"
            )
    finally:
        for flow in opened.values():
            flow.sock.close()
    return opened


def _cut_readers(flows: dict[str, Flow]) -> list[str]:
    """The steady readers cut although they kept the pace themselves (their own debt below half the allowance:
    the proxy sees at most that plus the lag of the window updates, below the whole allowance)."""
    return [
        f"{name} via {flow.edge.name}: {flow.error or flow.events}"
        for name, flow in _kept_pace(flows).items()
        if flow.error or not flow.events["alive at the end"]
    ]


def _kept_pace(flows: dict[str, Flow]) -> dict[str, Flow]:
    # On the shared 2-core machine a reader thread is sometimes starved for seconds (right after a flood,
    # one sent its command and next ran 3 s later): such a reader is slow in truth, and may be cut.
    limit = MIN_DRAIN * WINDOW_S / 2
    return {name: f for name, f in flows.items() if name != "0.5x" and f.max_debt < limit}


def test_steady_readers_above_the_minimum_are_never_cut_before_or_after_a_flood(lab: LabPlan) -> None:
    before = _round_of_readers(lab)
    flood = attacks.launch(lab, "syn-flood", 0, FLOOD_S)
    after = _round_of_readers(lab)
    assert flood.packets > 10_000, f"the flood reached only {flood.pps:.0f} pps"
    for flows in (before, after):
        debts = {name: round(f.max_debt) for name, f in flows.items()}
        assert len(_kept_pace(flows)) >= 4, f"too few readers kept their pace on this machine: {debts}"
    assert _cut_readers(before) == [], "cut before the flood"
    assert _cut_readers(after) == [], "cut after the flood"
    for flows in (before, after):
        for name, flow in _kept_pace(flows).items():
            assert flow.received >= MIN_DRAIN * RUN_S, (name, flow.received)
        slow = flows["0.5x"]
        assert slow.error is not None, "a reader at half the minimum pace must be cut"
