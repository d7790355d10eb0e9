"""Compile BPF C sources with bcc (or take them from the BPF cache); attach XDP and TC programs to devices."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesim import namespaces
from edgesim.bpf import cache, xdplink
from edgesim.bpf.xdplink import XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE
from edgesim.errors import EdgesimError, Problem

if TYPE_CHECKING:
    import bcc
    from pyroute2 import IPRoute

log = logging.getLogger(__name__)
_libc = ctypes.CDLL(None)

# C sources and their shared headers live beside this module; it is also the include directory.
BPF_DIR = Path(__file__).resolve().parent

# Attach flags per mode: "native" runs in the driver before an skb exists, "generic" after (any device).
XDP_MODE_FLAGS = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}
# Modes to try, in order: native is faster, generic works on every device.
_MODE_ORDER = {"auto": ("native", "generic"), "native": ("native",), "generic": ("generic",)}
# IFLA_XDP_ATTACHED (XDP_ATTACHED_* in linux/if_link.h), which pyroute2 decodes to `ip link` names.
_ATTACHED_MODES = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload", "xdpmulti": "multi"}
# asm-generic/socket.h: attach an eBPF program (by fd) as a socket's filter, and remove it (SO_DETACH_FILTER).
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27
# How many lines of compiler or verifier output an error shows; the rest is rarely the cause.
_OUTPUT_LINES = 15
# A quoted include: edgesim's own headers (system headers come in angle brackets and are left to clang).
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


@contextlib.contextmanager
def _captured_output() -> Iterator[list[str]]:
    """Collect what libbcc (clang, the verifier, its own notes) writes to fds 1 and 2 into a list of lines."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as capture:
        for fd in saved:
            os.dup2(capture.fileno(), fd)
        try:
            yield lines
        finally:
            # libbcc prints some notes through C++ std::cout, buffered in libc until flushed.
            _libc.fflush(None)
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines())


def _output_problems(lines: list[str]) -> list[Problem]:
    """The first lines of bcc's output, one problem each, so the error shows what the compiler said."""
    shown = [line for line in lines if line.strip()][:_OUTPUT_LINES]
    return [Problem("bcc", line) for line in shown]


def _headers_hint() -> str:
    """Where bcc looks for kernel headers, and how to provide them if they are not there."""
    build = Path("/lib/modules", os.uname().release, "build")
    if build.is_dir():
        return f"bcc used the kernel headers in {build.resolve()}; its output below says what failed"
    return (
        f"kernel headers are missing: {build} does not exist; install them with "
        "`ansible-playbook -c local -i localhost, playbooks/host.yml` (or edgesim.hostsetup.run_setup)"
    )


def _local_header(name: str, including: Path) -> Path | None:
    """The file a quoted include names, searched as clang does: beside the includer, then in BPF_DIR."""
    for directory in (including.parent, BPF_DIR):
        candidate = (directory / name).resolve()
        if candidate.is_file():
            return candidate
    return None


def translation_unit(source: Path) -> str:
    """The source with its quoted includes inlined, each file once, with #line markers.

    bcc rewrites map calls (`stats.lookup(&key)`) only in the text it is given, not in the headers clang
    reads: inlining edgesim's headers lets helpers that use maps live in per-concern headers. The #line
    markers keep compiler and verifier messages pointing at the real file and line.
    """
    seen: set[Path] = set()

    def expand(path: Path) -> list[str]:
        seen.add(path)
        out = [f'#line 1 "{path}"']
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = _LOCAL_INCLUDE.match(line)
            header = _local_header(match.group(1), path) if match else None
            if header is None:  # not ours (or missing: clang then says so, with the line)
                out.append(line)
                continue
            if header not in seen:
                out.extend(expand(header))
            out.append(f'#line {number + 1} "{path}"')
        return out

    return "\n".join(expand(source.resolve())) + "\n"


def compile_program(
    source: Path, cflags: Sequence[str] = (), params: Mapping[str, int | str] | None = None
) -> Any:
    """Compile a C source in edgesim/bpf, with -D definitions from params, and return the program.

    From the BPF cache (edgesim.bpf.cache: compiled once per source, params, kernel and bcc, then loaded
    without a compiler) unless EDGESIM_BPF_CACHE=off, which compiles in-process with bcc every time. Both
    offer the same interface: `program[b"map"]`, and the load_* functions here.
    """
    path = source if source.is_absolute() else BPF_DIR / source
    # bcc resolves relative paths against its own working directory; absolute paths avoid surprises.
    flags = [f"-I{BPF_DIR}", *cflags, *(f"-D{name}={value}" for name, value in (params or {}).items())]
    text = translation_unit(path)
    if cache.enabled():
        return cache.load(path, text, flags)
    return compile_text(path, text, flags)


def compile_text(path: Path, text: str, flags: Sequence[str]) -> bcc.BPF:
    """Compile a translation unit with bcc in this process (path names it in messages)."""
    try:
        from bcc import BPF
    except ImportError as exc:
        raise EdgesimError(
            Problem("bcc", f"the bcc Python module cannot be imported: {exc}"),
            hint="install python3-bpfcc and link it into the venv (edgesim.hostsetup.run_setup)",
        ) from exc
    # The error is raised after the capture ends: only then is bcc's output complete and visible again.
    with _captured_output() as output:
        try:
            program = BPF(text=text.encode(), cflags=list(flags))
        except Exception as exc:  # bcc raises a bare Exception when clang fails
            failure: Exception | None = exc
        else:
            failure = None
    if failure is not None:
        raise EdgesimError(
            [
                Problem(str(path), "bcc could not compile this program", _headers_hint()),
                *_output_problems(output),
            ]
        ) from failure
    # On success the output is only warnings (e.g. headers older than the kernel): not the user's concern.
    for line in output:
        log.debug("bcc: %s", line)
    return program


def _load(program: Any, function: str, prog_type: int, kind: str) -> int:
    """Load one function of a compiled program as `prog_type` through the verifier and return its fd."""
    with _captured_output() as output:
        try:
            loaded = program.load_func(function.encode(), prog_type)
        except Exception as exc:  # bcc raises a bare Exception when the verifier rejects the program
            failure: Exception | None = exc
        else:
            failure = None
    if failure is not None:
        # A cached program's refusal carries the verifier's log; bcc prints it to the captured output.
        verifier = getattr(failure, "log", None) or output
        raise EdgesimError(
            [
                Problem(function, f"the kernel rejected the {kind} program: {failure}"),
                *_output_problems(verifier),
            ]
        ) from failure
    return int(loaded.fd)


def load_xdp(program: Any, function: str) -> int:
    """Load one function of a compiled program as XDP through the verifier and return its fd."""
    return _load(program, function, type(program).XDP, "XDP")


def load_tc(program: Any, function: str) -> int:
    """Load one function of a compiled program as a TC classifier (cls_bpf) and return its fd."""
    return _load(program, function, type(program).SCHED_CLS, "TC")


def load_socket_filter(program: Any, function: str) -> int:
    """Load one function of a compiled program as a socket filter and return its fd."""
    return _load(program, function, type(program).SOCKET_FILTER, "socket filter")


def map_fd(program: Any, name: str) -> int:
    """The fd of one of a compiled program's maps (for map types bcc's tables do not cover: socket maps)."""
    if hasattr(program, "map_fds"):  # a cached image (edgesim.bpf.image.LoadedImage)
        if name not in program.map_fds:
            raise EdgesimError(Problem(name, "no such map in the program"))
        return int(program.map_fd(name))
    from bcc.libbcc import lib

    fd = lib.bpf_table_fd(program.module, name.encode())
    if fd < 0:
        raise EdgesimError(Problem(name, "no such map in the program"))
    return int(fd)


def attach_socket_filter(sock: socket.socket, fd: int) -> None:
    """Attach a loaded socket filter to a socket (SO_ATTACH_BPF); it replaces the socket's filter, if any."""
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)


def detach_socket_filter(sock: socket.socket) -> None:
    """Remove the socket's filter (SO_DETACH_BPF): every datagram reaches the socket again."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
    except OSError as exc:
        if exc.errno != errno.ENOENT:  # no filter attached: nothing to do
            raise


def _check_namespace(namespace: str) -> None:
    """An error unless the namespace exists (never creating one, so a typo leaves nothing behind)."""
    if not namespaces.exists(namespace):
        raise EdgesimError(Problem(namespace, "no such network namespace", "is the lab up?"))


@contextlib.contextmanager
def _device(namespace: str, ifname: str) -> Iterator[int]:
    """The calling thread inside `namespace` for the block, with ifname's index there.

    XDP is set through edgesim.bpf.xdplink, not pyroute2: an XDP agent then never imports pyroute2.
    """
    _check_namespace(namespace)
    with namespaces.inside(namespace):
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            raise EdgesimError(Problem(f"{namespace}/{ifname}", "no such interface")) from None
        yield index


@contextlib.contextmanager
def _rtnl(namespace: str) -> Iterator[IPRoute]:
    """A pyroute2 rtnetlink socket in an existing namespace, for TC (imported here, when first needed)."""
    from pyroute2 import IPRoute

    _check_namespace(namespace)
    with IPRoute(netns=namespace, flags=0, ext_ack=True) as ipr:
        yield ipr


def _index(ipr: IPRoute, namespace: str, ifname: str) -> int:
    """The interface index of ifname, or an error naming where it was looked for."""
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise EdgesimError(Problem(f"{namespace}/{ifname}", "no such interface"))
    return found[0]


def _netlink_reason(exc: Exception) -> str:
    """The kernel's extended ack message when there is one, else the errno text (pyroute2's error)."""
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) > 1 and args[1] else os.strerror(getattr(exc, "code", 0))


def attach_xdp(namespace: str, ifname: str, fd: int, mode: str = "auto") -> str:
    """Attach the XDP program fd to ifname in namespace; return the mode used ("native" or "generic")."""
    if mode not in _MODE_ORDER:
        raise EdgesimError(
            Problem("xdp mode", f"unknown mode {mode!r}", f"use one of {', '.join(_MODE_ORDER)}")
        )
    failures = []
    with _device(namespace, ifname) as index:
        for candidate in _MODE_ORDER[mode]:
            try:
                xdplink.set_xdp(index, fd, XDP_MODE_FLAGS[candidate])
            except xdplink.NetlinkError as exc:
                failures.append(f"{candidate}: {exc.message}")
                continue
            log.debug("XDP program attached to %s/%s in %s mode", namespace, ifname, candidate)
            return candidate
    raise EdgesimError(
        Problem(
            f"{namespace}/{ifname}",
            f"cannot attach the XDP program ({'; '.join(failures)})",
            "a device has one XDP mode at a time: detach the other program first",
        )
    )


def xdp_info(namespace: str, ifname: str) -> dict[str, Any] | None:
    """The attached XDP program of ifname as {"prog_id": int, "mode": str}, or None when there is none."""
    with _device(namespace, ifname) as index:
        state = xdplink.xdp_state(index)
    if state is None:
        return None
    # With programs in two modes at once ("multi") the kernel reports only the per-mode ids.
    prog_id = state.prog_id or state.drv_prog_id
    if not state.attached or not prog_id:
        return None
    attached = xdplink.ATTACHED.get(state.attached, str(state.attached))
    return {"prog_id": prog_id, "mode": _ATTACHED_MODES.get(attached, attached)}


def detach_xdp(namespace: str, ifname: str) -> None:
    """Detach whatever XDP program ifname has; nothing to do when it has none."""
    info = xdp_info(namespace, ifname)
    if info is None:
        return
    # The kernel detaches per mode, so the flags must name the mode the program was attached in.
    modes = ("native", "generic") if info["mode"] == "multi" else (info["mode"],)
    with _device(namespace, ifname) as index:
        for mode in modes:
            try:
                xdplink.set_xdp(index, -1, XDP_MODE_FLAGS.get(mode, 0))
            except xdplink.NetlinkError as exc:
                raise EdgesimError(
                    Problem(f"{namespace}/{ifname}", f"cannot detach the XDP program: {exc.message}")
                ) from exc


# clsact's two hooks as tc parents (TC_H_CLSACT with TC_H_MIN_INGRESS / TC_H_MIN_EGRESS).
TC_PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}
# One filter per hook: a fixed priority and handle, so attaching again replaces the program atomically.
_TC_PRIO = 1
_TC_HANDLE = 1


def _tc_parent(direction: str) -> int:
    """The clsact parent of a direction, or an error naming the two there are."""
    if direction not in TC_PARENTS:
        raise EdgesimError(
            Problem("tc direction", f"unknown direction {direction!r}", "use ingress or egress")
        )
    return TC_PARENTS[direction]


def _our_filter(index: int, parent: int) -> dict[str, Any]:
    """What identifies the one filter edgesim keeps on a hook, to replace or delete it."""
    return {"kind": "bpf", "index": index, "handle": _TC_HANDLE, "prio": _TC_PRIO, "parent": parent}


def attach_tc(namespace: str, ifname: str, fd: int, direction: str, name: str) -> None:
    """Attach a TC program (cls_bpf, direct action) to ifname's ingress or egress, replacing the one there."""
    from pyroute2.netlink.exceptions import NetlinkError

    parent = _tc_parent(direction)
    with _rtnl(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        try:
            ipr.tc("add", kind="clsact", index=index)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise EdgesimError(
                    Problem(f"{namespace}/{ifname}", f"cannot add the clsact qdisc: {_netlink_reason(exc)}")
                ) from exc
        try:
            program = {"fd": fd, "name": name, "classid": 1, "direct_action": True}
            ipr.tc("replace-filter", **_our_filter(index, parent), **program)
        except NetlinkError as exc:
            raise EdgesimError(
                Problem(
                    f"{namespace}/{ifname}",
                    f"cannot attach the TC program {name} on {direction}: {_netlink_reason(exc)}",
                )
            ) from exc


def tc_programs(namespace: str, ifname: str, direction: str) -> list[str]:
    """Names of the BPF programs attached to ifname's ingress or egress (empty when there is no clsact)."""
    from pyroute2.netlink.exceptions import NetlinkError

    parent = _tc_parent(direction)
    with _rtnl(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        try:
            filters = ipr.get_filters(index=index, parent=parent)
        except NetlinkError:
            return []
    names = []
    for item in filters:
        options = item.get_attr("TCA_OPTIONS")
        if item.get_attr("TCA_KIND") == "bpf" and options is not None and options.get_attr("TCA_BPF_NAME"):
            names.append(options.get_attr("TCA_BPF_NAME"))
    return names


def detach_tc(namespace: str, ifname: str, direction: str) -> None:
    """Remove the program edgesim attached to ifname's ingress or egress; nothing to do when there is none."""
    from pyroute2.netlink.exceptions import NetlinkError

    parent = _tc_parent(direction)
    with _rtnl(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        try:
            ipr.tc("del-filter", **_our_filter(index, parent))
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.EINVAL):
                raise EdgesimError(
                    Problem(f"{namespace}/{ifname}", f"cannot detach the TC program: {_netlink_reason(exc)}")
                ) from exc
