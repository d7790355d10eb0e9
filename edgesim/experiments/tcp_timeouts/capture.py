"""Packet capture in the middle node: every segment each end sent, with kernel timestamps, and whether it got
through.

An AF_PACKET socket on each of the router's two interfaces of a pair sees a packet arrive from its sender
before
nftables can drop it, and sees it leave towards the receiver only if it was forwarded: so the capture records
what
each end really sent (including what the cut path swallowed) and marks what was dropped. Frames are kept raw
while the case runs and decoded with scapy afterwards, so decoding never competes with the timers being
measured.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass

from edgesim import namespaces
from edgesim.experiments.tcp_timeouts.records import Direction, Packet

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # sll_pkttype of a frame the interface transmitted
SO_TIMESTAMPNS = 35  # kernel receive timestamps as struct timespec (CLOCK_REALTIME)
RCVBUF = 4 << 20


@dataclass(frozen=True)
class Frame:
    """A raw frame: kernel timestamp, interface, whether it left through that interface."""

    ts: float
    ifname: str
    outgoing: bool
    data: bytes


class Capture:
    """Captures both directions on a pair's two router interfaces until `stop`."""

    def __init__(self, netns: str, client_if: str, server_if: str) -> None:
        self.client_if = client_if
        self.server_if = server_if
        self.frames: list[Frame] = []
        self._socks: dict[int, tuple[str, socket.socket]] = {}
        with namespaces.inside(netns):
            for ifname in (client_if, server_if):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                sock.bind((ifname, ETH_P_ALL))
                self._socks[sock.fileno()] = (ifname, sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{client_if}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(list(self._socks), [], [], 0.1)
            for fd in ready:
                ifname, sock = self._socks[fd]
                data, ancillary, _, address = sock.recvmsg(65535, 256)
                self.frames.append(Frame(_timestamp(ancillary), ifname, address[2] == PACKET_OUTGOING, data))

    def stop(self) -> None:
        """Stop capturing and close the sockets (the frames stay)."""
        self._stop.set()
        self._thread.join()
        for _, sock in self._socks.values():
            sock.close()

    def packets(self, client: str, server: str, port: int, t0: float) -> list[Packet]:
        """The connection's segments (server port `port`), each once, as sent, with times relative to t0."""
        from scapy.layers.inet import IP, TCP  # scapy is slow to import; only decoding needs it
        from scapy.layers.l2 import Ether

        sent: list[tuple[Frame, Direction, object, object]] = []
        delivered: Counter[tuple] = Counter()
        for frame in self.frames:
            pkt = Ether(frame.data)
            if IP not in pkt or TCP not in pkt:
                continue
            ip, tcp = pkt[IP], pkt[TCP]
            if {ip.src, ip.dst} != {client, server} or port not in (tcp.sport, tcp.dport):
                continue
            direction: Direction = "c>s" if ip.src == client else "s>c"
            sender_if = self.client_if if direction == "c>s" else self.server_if
            if frame.outgoing and frame.ifname != sender_if:
                delivered[_key(ip, tcp)] += 1
            elif not frame.outgoing and frame.ifname == sender_if:
                sent.append((frame, direction, ip, tcp))
        sent.sort(key=lambda item: item[0].ts)
        classify = _Classifier()
        packets = []
        for frame, direction, ip, tcp in sent:
            key = _key(ip, tcp)
            dropped = delivered[key] == 0
            if not dropped:
                delivered[key] -= 1
            flags = str(tcp.flags)
            length = len(bytes(tcp.payload))
            packets.append(
                Packet(
                    t_s=round(frame.ts - t0, 6),
                    direction=direction,
                    flags=flags,
                    length=length,
                    seq=tcp.seq,
                    ack=tcp.ack,
                    window=tcp.window,
                    kind=classify(direction, flags, tcp.seq, length),
                    dropped=dropped,
                )
            )
        return packets


def _key(ip: object, tcp: object) -> tuple:
    # What forwarding leaves unchanged (it rewrites TTL and checksum only).
    return (ip.id, tcp.seq, tcp.ack, str(tcp.flags), len(bytes(tcp.payload)), tcp.window)  # type: ignore[attr-defined]


def _timestamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    raise RuntimeError("AF_PACKET frame without a kernel timestamp")


class _Classifier:
    """Names each segment by what it does, from the sequence space each side has used so far."""

    def __init__(self) -> None:
        self.isn: dict[str, int] = {}
        self.sent_end: dict[str, int] = {}  # highest relative sequence number sent, per direction

    def __call__(self, direction: str, flags: str, seq: int, length: int) -> str:
        if "S" in flags:
            self.isn.setdefault(direction, seq)
            self.sent_end[direction] = 1
            return "syn-ack" if "A" in flags else "syn"
        if "R" in flags:
            return "rst"
        relative = (seq - self.isn.get(direction, seq)) % (1 << 32)
        end = relative + length + (1 if "F" in flags else 0)
        previous = self.sent_end.get(direction, relative)
        self.sent_end[direction] = max(previous, end)
        if "F" in flags:
            return "fin"
        if length:
            return "retransmit" if end <= previous else "data"
        # Keepalive and zero-window probes reuse the byte before the next one (snd_una - 1) to force an ACK.
        return "probe" if relative == previous - 1 else "ack"
