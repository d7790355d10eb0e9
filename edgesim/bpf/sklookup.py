"""What bcc does not offer for socket dispatch: attaching an SK_LOOKUP program to a network namespace (a BPF
link, libbpf's bpf_link_create) and writing socket maps (bcc has no Python table type for them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import cache
from typing import Any

from edgesim.errors import EdgesimError, Problem

# uapi/linux/bpf.h: the program type, and the attach type it must be loaded and linked with.
BPF_PROG_TYPE_SK_LOOKUP = 30
BPF_SK_LOOKUP = 36
# bpf_map_update_elem's flags: create or replace.
BPF_ANY = 0


@cache
def _libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
    lib.bpf_link_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    lib.bpf_map_update_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
    lib.bpf_map_delete_elem.argtypes = [ctypes.c_int, ctypes.c_void_p]
    return lib


def _errno(result: int) -> int:
    """libbpf returns -errno (and sets errno) on failure."""
    return -result if result < 0 else ctypes.get_errno()


def load(program: Any, function: str) -> int:
    """Load one function of a compiled program as an SK_LOOKUP program and return its fd."""
    try:
        return program.load_func(function.encode(), BPF_PROG_TYPE_SK_LOOKUP, None, BPF_SK_LOOKUP).fd
    except Exception as exc:  # bcc raises a bare Exception when the verifier refuses
        verifier = [Problem("verifier", line) for line in getattr(exc, "log", [])]
        problem = Problem(function, f"the kernel rejected the sk_lookup program: {exc}")
        raise EdgesimError([problem, *verifier]) from exc


def attach(prog_fd: int, netns_path: str) -> int:
    """Attach the program to a network namespace; the returned link fd keeps it attached until closed."""
    netns_fd = os.open(netns_path, os.O_RDONLY)
    try:
        link = _libbpf().bpf_link_create(prog_fd, netns_fd, BPF_SK_LOOKUP, None)
    finally:
        os.close(netns_fd)
    if link < 0:
        code = _errno(link)
        raise EdgesimError(
            Problem(
                netns_path, f"cannot attach sk_lookup: {os.strerror(code)}", "it needs Linux 5.9 or later"
            )
        )
    return link


def sockmap_set(fd: int, index: int, sock_fd: int) -> None:
    """Put a socket (by an fd of this process) at `index` of a socket map."""
    key, value = ctypes.c_uint32(index), ctypes.c_uint32(sock_fd)
    result = _libbpf().bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), BPF_ANY)
    if result != 0:
        code = _errno(result)
        raise EdgesimError(
            Problem(
                "socket map",
                f"cannot register the socket: {os.strerror(code)}",
                "a TCP socket must be listening (sk_lookup takes listeners and UDP sockets)",
            )
        )


def sockmap_delete(fd: int, index: int) -> bool:
    """Remove the socket at `index`; whether there was one."""
    key = ctypes.c_uint32(index)
    result = _libbpf().bpf_map_delete_elem(fd, ctypes.byref(key))
    if result != 0 and _errno(result) != errno.ENOENT:
        raise EdgesimError(Problem("socket map", f"cannot remove the socket: {os.strerror(_errno(result))}"))
    return result == 0
