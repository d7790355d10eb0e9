"""Run a loaded BPF program on a packet with the kernel's BPF_PROG_TEST_RUN (libbpf's bpf_prog_test_run_opts).

Used by the packet-table tests and by the benchmarks: the program runs exactly as on a device, maps and all,
without a device; the kernel returns the verdict, the packet as the program left it, and the time per run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from functools import cache

XDP_VERDICTS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
# Live frames (kernel 5.18+): the frames an XDP program transmits or redirects really leave.
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
_MAX_OUT = 4096
# sizeof(struct __sk_buff) and the offset of its `mark`: the context a TC program's test run may be given.
_SKB_CTX_SIZE = 192
_SKB_MARK_OFFSET = 8


class _TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts of libbpf ≥ 0.7 (its first field says how much of it we know)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


@cache
def _libbpf() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.bpf_prog_test_run_opts.argtypes = [ctypes.c_int, ctypes.POINTER(_TestRunOpts)]
    lib.bpf_prog_test_run_opts.restype = ctypes.c_int
    return lib


@dataclass(frozen=True)
class RunResult:
    """What one test run returned."""

    retval: int
    packet: bytes  # the packet as the program left it
    duration_ns: int  # average time per repetition, as the kernel measured it

    @property
    def verdict(self) -> str:
        """The XDP verdict's name (for XDP programs)."""
        return XDP_VERDICTS.get(self.retval, str(self.retval))


def run(prog_fd: int, packet: bytes, repeat: int = 1, skb_mark: int | None = None) -> RunResult:
    """Run the program on `packet` `repeat` times; raises OSError when the kernel refuses.

    skb_mark: for a TC program, the packet's mark (passed in a struct __sk_buff context).
    """
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(_MAX_OUT)
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts),
        data_in=ctypes.cast(data_in, ctypes.c_void_p),
        data_out=ctypes.cast(data_out, ctypes.c_void_p),
        data_size_in=len(packet),
        data_size_out=_MAX_OUT,
        repeat=repeat,
    )
    if skb_mark is not None:
        ctx = ctypes.create_string_buffer(_SKB_CTX_SIZE)
        ctypes.c_uint32.from_buffer(ctx, _SKB_MARK_OFFSET).value = skb_mark
        opts.ctx_in = ctypes.cast(ctx, ctypes.c_void_p)
        opts.ctx_size_in = _SKB_CTX_SIZE
    err = _libbpf().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
    if err:
        code = -err if err < 0 else ctypes.get_errno()
        raise OSError(code, f"BPF_PROG_TEST_RUN failed: {os.strerror(code)}")
    return RunResult(opts.retval, data_out.raw[: opts.data_size_out], opts.duration)


def run_live(prog_fd: int, packet: bytes, repeat: int, batch_size: int = 64) -> None:
    """Run an XDP program `repeat` times on fresh copies of `packet` in live-frames mode: what it redirects
    or sends back (XDP_REDIRECT, XDP_TX) is really transmitted, in batches of `batch_size` frames."""
    data_in = ctypes.create_string_buffer(packet, len(packet))
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts),
        data_in=ctypes.cast(data_in, ctypes.c_void_p),
        data_size_in=len(packet),
        repeat=repeat,
        flags=BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size=batch_size,
    )
    err = _libbpf().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
    if err:
        code = -err if err < 0 else ctypes.get_errno()
        raise OSError(code, f"BPF_PROG_TEST_RUN (live frames) failed: {os.strerror(code)}")
