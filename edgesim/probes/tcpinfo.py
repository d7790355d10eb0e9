"""struct tcp_info (include/uapi/linux/tcp.h) of a socket, read with getsockopt(TCP_INFO) at its offsets.

The kernel copies min(len, sizeof(struct tcp_info)) bytes and the struct only ever grows at its end, so each
field is read at its fixed offset when the kernel returned that far, and is None on a kernel too old for it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

# name → (offset, struct format); offsets follow the C layout (u8 x 8, then u32s, u64s aligned to 8).
FIELDS: dict[str, tuple[int, str]] = {
    "state": (0, "B"),
    "retransmits": (2, "B"),
    "probes": (3, "B"),
    "backoff": (4, "B"),
    "rto_us": (8, "I"),
    "snd_mss": (16, "I"),
    "rcv_mss": (20, "I"),
    "unacked": (24, "I"),
    "lost": (32, "I"),
    "retrans": (36, "I"),
    "last_data_recv_ms": (52, "I"),
    "last_ack_recv_ms": (56, "I"),
    "rtt_us": (68, "I"),
    "snd_cwnd": (80, "I"),
    "total_retrans": (100, "I"),
    "bytes_acked": (120, "Q"),
    "bytes_received": (128, "Q"),
    "segs_out": (136, "I"),
    "segs_in": (140, "I"),
    "notsent_bytes": (144, "I"),  # since 4.6
    "delivered": (192, "I"),
    "bytes_sent": (200, "Q"),  # since 4.19
    "bytes_retrans": (208, "Q"),
    "snd_wnd": (228, "I"),  # since 5.4
    "rcv_wnd": (232, "I"),  # since 6.2
    "total_rto": (240, "H"),  # since 6.7
}
READ_SIZE = 512  # more than any kernel's struct tcp_info; the kernel says how much it filled


@dataclass(frozen=True)
class TcpInfo:
    """The fields of struct tcp_info that edgesim uses; None where this kernel's struct ends earlier."""

    state: int
    retransmits: int
    probes: int
    backoff: int
    rto_us: int
    snd_mss: int
    rcv_mss: int
    unacked: int
    lost: int
    retrans: int
    last_data_recv_ms: int
    last_ack_recv_ms: int
    rtt_us: int
    snd_cwnd: int
    total_retrans: int
    bytes_acked: int
    bytes_received: int
    segs_out: int
    segs_in: int
    notsent_bytes: int | None
    delivered: int | None
    bytes_sent: int | None
    bytes_retrans: int | None
    snd_wnd: int | None
    rcv_wnd: int | None
    total_rto: int | None


def parse(raw: bytes) -> TcpInfo:
    """Decode the bytes getsockopt(TCP_INFO) returned."""
    values: dict[str, int | None] = {}
    for name, (offset, fmt) in FIELDS.items():
        end = offset + struct.calcsize(fmt)
        values[name] = struct.unpack_from(f"={fmt}", raw, offset)[0] if len(raw) >= end else None
    return TcpInfo(**values)  # type: ignore[arg-type]


def tcp_info(sock: socket.socket) -> TcpInfo:
    """The socket's struct tcp_info, now."""
    return parse(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, READ_SIZE))
