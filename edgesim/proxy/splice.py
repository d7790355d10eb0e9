"""The TCP proxy's splice (SOCKMAP): both sockets of a connection in a socket hash whose stream verdict
program (edgesim/bpf/sk_splice.c) moves each side's bytes to the other in the kernel.

A connection starts in copy mode: its first bytes may already wait in a socket's queue, so the proxy reads and
forwards them itself, then asks for the handover. The program takes it at the first segment that finds no
byte passed to the proxy since it asked, so no redirected byte can overtake a copied one.

A redirect frees the sender's receive window at once (the kernel charges nothing to the receiving socket for
bytes queued on its peer's send side), so a fast sender and a slow reader would queue without bound. Each side
therefore has a budget: bytes redirected may run at most `budget` ahead of what the peer's send queue has
taken. Past it the program goes back to copy mode; segments stay in the socket's own queue, are charged to its
receive buffer, and its window closes: the back pressure. The proxy then waits until the peer has taken every
redirected byte, forwards what waited, and hands over again.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesim.bpf import loader, syscall
from edgesim.probes.tcpinfo import tcp_info
from edgesim.proxy.section import DEFAULT_BUDGET

PROGRAM = Path("sk_splice.c")
ENTRY = "splice_verdict"
# uapi/linux/bpf.h: the program type, and the attach type of a stream verdict on a socket map.
BPF_PROG_TYPE_SK_SKB = 14
BPF_SK_SKB_STREAM_VERDICT = 5
# asm-generic/socket.h; Python's socket module does not name it.
SO_COOKIE = 57
# linux/sockios.h SIOCOUTQ (= TIOCOUTQ): bytes in a TCP socket's send queue, sent or not, not yet acked.
SIOCOUTQ = 0x5411
BPF_NOEXIST = 1
# A side's mode (SPLICE_MODE_* in splice_consts.h).
MODE_COPY = 0
MODE_SPLICE = 1
# splice_totals' slots (SPLICE_* in splice_consts.h).
TOTALS = (
    "passed_bytes",
    "redirected_bytes",
    "redirected_segments",
    "handovers",
    "pauses",
    "redirect_failed",
    "unknown_socket",
    "empty_dropped",
)


class SpliceUnavailable(Exception):
    """The kernel refused the splice (the program, its attachment, or a socket): the proxy copies instead."""


def cookie(sock: socket.socket) -> int:
    """The socket's cookie (SO_COOKIE): the key the program knows it by."""
    return int(struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])


def queued_total(sock: socket.socket) -> int:
    """Every byte that ever entered the socket's send queue: acknowledged ones plus those still in it."""
    outq = struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]
    return tcp_info(sock).bytes_acked + outq


@dataclass
class SideState:
    """What the program did with one side's bytes so far."""

    passed: int
    redirected: int
    segments: int
    mode: int
    pauses: int


class Direction:
    """One direction of a spliced connection: the bytes `source` receives, bound for `target`."""

    def __init__(self, splicer: Splicer, source: socket.socket, target: socket.socket) -> None:
        self.splicer = splicer
        self.source = source
        self.target = target
        self.key = ctypes.c_uint64(cookie(source))
        self.peer = cookie(target)
        # The target's queue total before this direction wrote anything (an active opener's SYN counts 1).
        self.base = queued_total(target)

    def state(self) -> SideState:
        """The program's counters for this side."""
        leaf = self.splicer.sides[self.key]
        return SideState(leaf.passed, leaf.redirected, leaf.segments, leaf.mode, leaf.pauses)

    def taken(self, copied: int) -> int:
        """Redirected bytes the target's send queue has taken, given the bytes the proxy copied into it."""
        return queued_total(self.target) - self.base - copied

    def pending(self, copied: int) -> int:
        """Redirected bytes not yet in the target's send queue (they wait on the kernel's redirect queue)."""
        return self.state().redirected - self.taken(copied)

    def hand_over(self, read: int, copied: int) -> bool:
        """Ask for the handover once every byte the source got is read here or redirected; whether it asked.

        `read`: bytes the proxy read from the source; `copied`: bytes it wrote into the target (all of them
        are in the target's queue by now). The program switches at the next segment if, by then, no byte has
        been passed to the proxy since the state read here.
        """
        state = self.state()
        # Every byte received is redirected or read here, or bytes wait that the proxy must read first.
        if tcp_info(self.source).bytes_received != read + state.redirected:
            return False
        self._write(state.passed, self.taken(copied) + self.splicer.budget, requested=True)
        return True

    def extend(self, copied: int) -> None:
        """Move the budget's edge up to the target's progress (between pauses, so fast paths rarely pause)."""
        leaf = self.splicer.links[self.key]
        allowed = self.taken(copied) + self.splicer.budget
        if allowed > leaf.allowed:
            self._write(leaf.handover_at, allowed, requested=bool(leaf.requested))

    def _write(self, handover_at: int, allowed: int, requested: bool) -> None:
        links = self.splicer.links
        links[self.key] = links.Leaf(
            peer=self.peer, handover_at=handover_at, allowed=allowed, requested=int(requested), pad=0
        )


class Splicer:
    """The verdict program attached to its socket hash, in the proxy's process; one for all connections."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        try:
            self.bpf: Any = loader.compile_program(PROGRAM)
            self.prog_fd = self.bpf.load_func(ENTRY.encode(), BPF_PROG_TYPE_SK_SKB).fd
            self.sockets_fd = loader.map_fd(self.bpf, "splice_sockets")
            syscall.prog_attach(self.sockets_fd, self.prog_fd, BPF_SK_SKB_STREAM_VERDICT)
        except Exception as exc:  # EdgesimError, OSError, or bcc's bare Exception when the kernel refuses
            raise SpliceUnavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        self.links = self.bpf[b"splice_links"]
        self.sides = self.bpf[b"splice_sides"]

    def join(self, client: socket.socket, origin: socket.socket) -> tuple[Direction, Direction]:
        """Put both established sockets in the socket hash, in copy mode; the two directions."""
        directions = (Direction(self, client, origin), Direction(self, origin, client))
        try:
            for direction in directions:
                # The program's state first: a segment that runs it finds its socket described.
                self.sides[direction.key] = self.sides.Leaf()
                direction._write(0, 0, requested=False)
            for direction, sock in zip(directions, (client, origin), strict=True):
                value = ctypes.c_uint32(sock.fileno())
                syscall.map_update(self.sockets_fd, direction.key, value, BPF_NOEXIST)
        except OSError as exc:
            self.forget(directions)
            if exc.errno == errno.EOPNOTSUPP:  # a socket hash takes established sockets only
                raise SpliceUnavailable("a socket is no longer established (its peer closed first)") from exc
            raise SpliceUnavailable(f"the kernel refused a socket: {exc.strerror}") from exc
        return directions

    def forget(self, directions: tuple[Direction, ...]) -> None:
        """Remove a connection's sockets and state (closing a socket removes it from the hash too)."""
        for direction in directions:
            syscall.map_delete(self.sockets_fd, direction.key)
            for table in (self.links, self.sides):
                try:
                    del table[direction.key]
                except KeyError:
                    pass

    def totals(self) -> dict[str, int]:
        """The program's totals, summed over the CPUs."""
        table = self.bpf[b"splice_totals"]
        return {name: sum(int(v) for v in table[ctypes.c_int(slot)]) for slot, name in enumerate(TOTALS)}
