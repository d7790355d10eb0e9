"""XDP on a device through rtnetlink, in the calling thread's namespace, with the standard library only.

What an agent needs of netlink at run time is three messages: attach or detach a program (RTM_SETLINK
with a nested IFLA_XDP) and read what is attached (RTM_GETLINK). pyroute2 can do it, but importing it
costs every agent ~22 MB of resident memory (its package imports all its modules); this module costs
none. Errors carry the kernel's extended ack message, as pyroute2's did.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK = 16, 18, 19
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NLM_F_CAPPED = 0x100  # the error message holds only the request's header, not its payload
NLM_F_ACK_TLVS = 0x200  # the error message carries TLVs (extended ack)
NLMSGERR_ATTR_MSG = 1
NETLINK_EXT_ACK = 11  # socket option (level SOL_NETLINK)
SOL_NETLINK = 270  # linux/socket.h (the socket module does not name it)
NLA_F_NESTED = 0x8000
AF_UNSPEC = 0
# linux/if_link.h
IFLA_XDP = 43
IFLA_XDP_FD, IFLA_XDP_ATTACHED, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID = 1, 2, 3, 4
IFLA_XDP_DRV_PROG_ID, IFLA_XDP_SKB_PROG_ID = 5, 6
XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE = 1 << 1, 1 << 2
# XDP_ATTACHED_*: how the program is attached, in `ip link`'s words
ATTACHED = {1: "xdp", 2: "xdpgeneric", 3: "xdpoffload", 4: "xdpmulti"}

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_ATTR = struct.Struct("=HH")  # rtattr: length, type


class NetlinkError(OSError):
    """The kernel refused a request: errno and its extended ack message (or the errno's text)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message or os.strerror(code))
        self.code = code
        self.message = message or os.strerror(code)


@dataclass(frozen=True)
class XdpState:
    """What IFLA_XDP says of a device: how a program is attached (XDP_ATTACHED_*) and the program ids."""

    attached: int
    prog_id: int
    drv_prog_id: int
    skb_prog_id: int


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    data = _ATTR.pack(_ATTR.size + len(payload), kind) + payload
    return data + b"\0" * (_align(len(data)) - len(data))


def _attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    while len(data) >= _ATTR.size:
        length, kind = _ATTR.unpack_from(data)
        if length < _ATTR.size:
            break
        found[kind & ~NLA_F_NESTED] = data[_ATTR.size : length]
        data = data[_align(length) :]
    return found


def _request(kind: int, flags: int, payload: bytes) -> list[tuple[int, bytes]]:
    """Send one message, return the answers (type, body) up to the ack; raises NetlinkError."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as sock:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
        sock.send(_HEADER.pack(_HEADER.size + len(payload), kind, NLM_F_REQUEST | flags, 1, 0) + payload)
        answers = []
        while True:
            data = sock.recv(65536)
            while len(data) >= _HEADER.size:
                length, msg_type, msg_flags, _, _ = _HEADER.unpack_from(data)
                body = data[_HEADER.size : length]
                data = data[_align(length) :]
                if msg_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", body)
                    if code == 0:
                        return answers
                    message = ""
                    if msg_flags & NLM_F_ACK_TLVS:
                        # After the error code comes the request (only its header when capped), then TLVs.
                        (request_length,) = struct.unpack_from("=I", body, 4)
                        skip = _HEADER.size if msg_flags & NLM_F_CAPPED else _align(request_length)
                        tlvs = _attrs(body[4 + skip :])
                        message = tlvs.get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0").decode(errors="replace")
                    raise NetlinkError(-code, message)
                answers.append((msg_type, body))
                if not flags & NLM_F_ACK:
                    return answers


def set_xdp(index: int, fd: int, flags: int) -> None:
    """Attach program `fd` (or detach, fd -1) in the mode `flags` names, on device `index`."""
    nested = _attr(IFLA_XDP_FD, struct.pack("=i", fd)) + _attr(IFLA_XDP_FLAGS, struct.pack("=I", flags))
    payload = _IFINFO.pack(AF_UNSPEC, 0, index, 0, 0) + _attr(IFLA_XDP | NLA_F_NESTED, nested)
    _request(RTM_SETLINK, NLM_F_ACK, payload)


def xdp_state(index: int) -> XdpState | None:
    """What is attached to device `index` (None: nothing)."""
    answers = _request(RTM_GETLINK, 0, _IFINFO.pack(AF_UNSPEC, 0, index, 0, 0))
    for msg_type, body in answers:
        if msg_type != RTM_NEWLINK:
            continue
        xdp = _attrs(body[_IFINFO.size :]).get(IFLA_XDP)
        if xdp is None:
            return None
        nested = _attrs(xdp)
        return XdpState(
            _number(nested, IFLA_XDP_ATTACHED, "=B"),
            _number(nested, IFLA_XDP_PROG_ID),
            _number(nested, IFLA_XDP_DRV_PROG_ID),
            _number(nested, IFLA_XDP_SKB_PROG_ID),
        )
    return None


def _number(attrs: dict[int, bytes], kind: int, fmt: str = "=I") -> int:
    value = attrs.get(kind)
    return struct.unpack_from(fmt, value)[0] if value else 0
