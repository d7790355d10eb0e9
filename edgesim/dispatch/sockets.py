"""Finding a service's socket by the address it is bound to, and taking a copy of it (pidfd_getfd), so that
the dispatch agent can put another process's socket into its socket map, as tubular's register-pid does.
"""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

from edgesim.errors import EdgesimError, Problem

# The syscall's number is the same on every architecture (it came after the numbers were unified).
SYS_PIDFD_GETFD = 438
# /proc/net/tcp's state column: TCP_LISTEN. UDP sockets are listed with state 07 (TCP_CLOSE).
_WANTED_STATE = {"tcp": "0A", "udp": "07"}
_libc = ctypes.CDLL(None, use_errno=True)


def _hex_address(listen: str) -> str:
    """`127.0.0.1:7000` as /proc/net/tcp writes it: 0100007F:1B58."""
    host, port = listen.rsplit(":", 1)
    return f"{int.from_bytes(socket.inet_aton(host), 'little'):08X}:{int(port):04X}"


def socket_inode(pid: int, protocol: str, listen: str) -> int | None:
    """The inode of the process's listening TCP (or bound UDP) socket on `listen`, if it has one."""
    wanted = _hex_address(listen)
    lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
    inodes = {
        int(fields[9])
        for fields in (line.split() for line in lines)
        if fields[1] == wanted and fields[3] == _WANTED_STATE[protocol]
    }
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            return int(target[8:-1])
    return None


def _fd_of(pid: int, inode: int) -> int:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.name)
        except OSError:
            continue
    raise EdgesimError(Problem(f"pid {pid}", f"has no socket {inode} any more"))


def take(pid: int, inode: int) -> int:
    """A new fd in this process for the socket `inode` of process `pid` (the caller closes it)."""
    pidfd = os.pidfd_open(pid)
    try:
        fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, _fd_of(pid, inode), 0)
    finally:
        os.close(pidfd)
    if fd < 0:
        code = ctypes.get_errno()
        raise EdgesimError(
            Problem(
                f"pid {pid}", f"cannot take its socket: {os.strerror(code)}", "pidfd_getfd needs Linux 5.6+"
            )
        )
    return int(fd)
