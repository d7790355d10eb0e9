"""The bpf(2) commands a cached program needs, called directly: create a map, load a program, and read and
write map elements. Kernel ABI (union bpf_attr), so no compiler, libbcc or libbpf version is involved.
"""

from __future__ import annotations

import ctypes
import os
import platform
from functools import cache

# uapi/linux/bpf.h: enum bpf_cmd.
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_UPDATE_BATCH = 26
# The name the kernel keeps for a map or program: 15 characters and a NUL.
OBJ_NAME_LEN = 16
# bpf(2)'s number per architecture (asm/unistd.h).
_SYSCALL_NUMBERS = {
    "x86_64": 321,
    "aarch64": 280,
    "armv7l": 386,
    "ppc64le": 361,
    "s390x": 351,
    "riscv64": 280,
}


class _MapCreate(ctypes.Structure):
    """The BPF_MAP_CREATE part of union bpf_attr, up to the BTF fields (which a cached map does without)."""

    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
        ("map_ifindex", ctypes.c_uint32),
    ]


class _MapElem(ctypes.Structure):
    """The BPF_MAP_*_ELEM part of union bpf_attr (`value` is `next_key` for BPF_MAP_GET_NEXT_KEY)."""

    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _MapBatch(ctypes.Structure):
    """The BPF_MAP_*_BATCH part of union bpf_attr."""

    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _ProgAttach(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _ProgLoad(ctypes.Structure):
    """The BPF_PROG_LOAD part of union bpf_attr, up to expected_attach_type (no BTF, no attach target)."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


@cache
def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def _bpf(command: int, attr: ctypes.Structure) -> int:
    """One bpf(2) call; its result, or OSError with the errno."""
    number = _SYSCALL_NUMBERS.get(platform.machine())
    if number is None:
        raise OSError(0, f"bpf(2) has no known number on {platform.machine()}")
    result = _libc().syscall(
        ctypes.c_long(number), ctypes.c_int(command), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))
    )
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def _address(buffer: ctypes._CData) -> int:
    return ctypes.addressof(buffer)


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int, name: str) -> int:
    """A new map; its fd (owned by the caller: the map lives while an fd or a program holds it)."""
    attr = _MapCreate(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        map_name=name.encode()[: OBJ_NAME_LEN - 1],
    )
    return _bpf(BPF_MAP_CREATE, attr)


def map_lookup(fd: int, key: ctypes._CData, value: ctypes._CData) -> bool:
    """Read the value at key into `value`; False when there is no such key."""
    attr = _MapElem(map_fd=fd, key=_address(key), value=_address(value))
    try:
        _bpf(BPF_MAP_LOOKUP_ELEM, attr)
    except OSError as exc:
        if exc.errno == 2:  # ENOENT
            return False
        raise
    return True


def map_update(fd: int, key: ctypes._CData, value: ctypes._CData, flags: int = 0) -> None:
    """Write value at key (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST)."""
    _bpf(BPF_MAP_UPDATE_ELEM, _MapElem(map_fd=fd, key=_address(key), value=_address(value), flags=flags))


def map_delete(fd: int, key: ctypes._CData) -> bool:
    """Remove key; False when there was no such key."""
    try:
        _bpf(BPF_MAP_DELETE_ELEM, _MapElem(map_fd=fd, key=_address(key)))
    except OSError as exc:
        if exc.errno == 2:  # ENOENT
            return False
        raise
    return True


def map_next_key(fd: int, key: ctypes._CData | None, next_key: ctypes._CData) -> bool:
    """Put the key after `key` (the first key for None) into next_key; False at the end."""
    attr = _MapElem(map_fd=fd, key=0 if key is None else _address(key), value=_address(next_key))
    try:
        _bpf(BPF_MAP_GET_NEXT_KEY, attr)
    except OSError as exc:
        if exc.errno == 2:  # ENOENT: no further key
            return False
        raise
    return True


def map_update_batch(fd: int, keys: ctypes.Array, values: ctypes.Array) -> None:  # type: ignore[type-arg]
    """Write len(keys) entries in one call."""
    attr = _MapBatch(keys=_address(keys), values=_address(values), count=len(keys), map_fd=fd)
    _bpf(BPF_MAP_UPDATE_BATCH, attr)


def map_lookup_batch(
    fd: int, token: ctypes._CData, first: bool, keys: int, values: int, count: int
) -> tuple[int, bool]:
    """Read up to `count` entries into the buffers at `keys` and `values`, going on from `token` (unless
    `first`); (how many were read, whether the map has no more). The kernel updates `token`."""
    attr = _MapBatch(
        in_batch=0 if first else _address(token),
        out_batch=_address(token),
        keys=keys,
        values=values,
        count=count,
        map_fd=fd,
    )
    try:
        _bpf(BPF_MAP_LOOKUP_BATCH, attr)
    except OSError as exc:
        if exc.errno == 2:  # ENOENT: this was the last batch (attr.count says how many it held)
            return attr.count, True
        raise
    return attr.count, False


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str,
    name: str,
    *,
    kern_version: int = 0,
    expected_attach_type: int = 0,
    log_size: int = 0,
) -> tuple[int, str]:
    """Load a program through the verifier: (fd, "") or, when it refuses, (-errno, the verifier's log).

    log_size 0 loads without a log (the fast way); a caller that got a refusal loads again with one.
    """
    insn_buffer = ctypes.create_string_buffer(insns, len(insns))
    license_buffer = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = _ProgLoad(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=_address(insn_buffer),
        license=_address(license_buffer),
        log_level=1 if log else 0,
        log_size=log_size,
        log_buf=_address(log) if log else 0,
        kern_version=kern_version,
        prog_name=name.encode()[: OBJ_NAME_LEN - 1],
        expected_attach_type=expected_attach_type,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr), ""
    except OSError as exc:
        text = log.value.decode(errors="replace") if log else ""
        return -(exc.errno or 1), text


@cache
def prog_attach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """Attach a program to a target that is not a device (a socket map, a cgroup): BPF_PROG_ATTACH."""
    _bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type))


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """Detach what prog_attach attached (the target's fds closing detaches it as well)."""
    _bpf(BPF_PROG_DETACH, _ProgAttach(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type))


def possible_cpus() -> int:
    """How many CPUs a per-CPU map holds a value for (the kernel's possible CPUs, not the online ones)."""
    text = open("/sys/devices/system/cpu/possible").read().strip()
    count = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count
