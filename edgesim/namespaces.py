"""Network-namespace primitives shared by backends and roles: enter, run in, sysctl, find processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from edgesim import guard
from edgesim.waiting import wait_until

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def exists(name: str) -> bool:
    """Whether a named namespace exists."""
    return (NETNS_DIR / name).exists()


def list_with_prefix(prefix: str) -> list[str]:
    """Named namespaces whose name starts with `prefix`."""
    from pyroute2 import netns as pr_netns  # here: an agent that only enters namespaces never imports it

    return sorted(n for n in pr_netns.listnetns() if n.startswith(prefix))


def create(name: str, mount_ns: str | None = None) -> None:
    """Create a named namespace (like `ip netns add`); see lab_mount_ns for mount_ns."""
    from pyroute2 import netns as pr_netns

    if mount_ns is None:
        pr_netns.create(name)
    else:
        _ip_netns_in(mount_ns, "add", name)


def remove(name: str, prefix: str, mount_ns: str | None = None) -> None:
    """Remove a named namespace of a lab (refused unless it starts with the lab's `prefix`, see guard)."""
    from pyroute2 import netns as pr_netns

    guard.namespace_name(name, prefix)
    if mount_ns is None:
        pr_netns.remove(name)
    else:
        _ip_netns_in(mount_ns, "del", name)


def lab_mount_ns() -> str | None:
    """The mount namespace a service must name namespaces in, when it is not its own (else None).

    Services run in a private mount namespace (for their own /sys, see enter_for_exec): a namespace they
    create with a bind mount under /run/netns would exist for them alone. The supervisor that started
    them lives in the lab's mount namespace, so they create and remove namespaces there.
    """
    parent = f"/proc/{os.getppid()}/ns/mnt"
    if os.stat(parent).st_ino == os.stat("/proc/self/ns/mnt").st_ino:
        return None
    # Held open for the service's lifetime: the supervisor may die and a new one adopt the service (the
    # parent is then init), and the namespace must stay reachable. A path, so a child can open it too.
    return f"/proc/{os.getpid()}/fd/{os.open(parent, os.O_RDONLY)}"


def _ip_netns_in(mount_ns: str, action: str, name: str) -> None:
    """`ip netns add|del NAME` from a child that first joins mount_ns (a threaded process cannot)."""

    def join() -> None:
        fd = os.open(mount_ns, os.O_RDONLY)
        try:
            _check(_libc.setns(fd, CLONE_NEWNS), f"setns {mount_ns}")
        finally:
            os.close(fd)

    result = subprocess.run(["ip", "netns", action, name], preexec_fn=join, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"ip netns {action} {name}: {result.stderr.strip()}")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(name: str) -> None:
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {name}")
    finally:
        os.close(fd)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block with the calling thread in namespace `name` (sockets opened here stay in it)."""
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(name)
        yield
    finally:
        try:
            _check(_libc.setns(saved, CLONE_NEWNET), "setns back")
        finally:
            os.close(saved)


def write_sysctl(name: str, key: str, value: str) -> None:
    """Set a sysctl inside a namespace."""
    with inside(name):
        write_sysctl_here(key, value)


def write_sysctl_here(key: str, value: str) -> None:
    """Set a sysctl of the calling thread's namespace: /proc/sys/net resolves against the opener's."""
    Path("/proc/sys", *key.split(".")).write_text(value)


def read_sysctl(name: str, key: str) -> str:
    """Read a sysctl inside a namespace."""
    with inside(name):
        return Path("/proc/sys", *key.split(".")).read_text().strip()


def enter_for_exec(name: str) -> Callable[[], None]:
    """A preexec function that moves a child into `name` like `ip netns exec` (with its own /sys)."""

    def preexec() -> None:
        _setns(name)
        # A private mount namespace with a fresh sysfs, so /sys/class/net shows this namespace's links.
        _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make / a slave mount")
        _libc.umount2(b"/sys", MNT_DETACH)
        _check(_libc.mount(name.encode(), b"/sys", b"sysfs", 0, None), "mount sysfs")

    return preexec


def run_in(name: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command inside a namespace and wait for it (kwargs go to subprocess.run)."""
    return subprocess.run(list(argv), preexec_fn=enter_for_exec(name), **kwargs)  # type: ignore[call-overload]


def popen_in(name: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
    """Start a command inside a namespace without waiting (kwargs go to subprocess.Popen)."""
    return subprocess.Popen(list(argv), preexec_fn=enter_for_exec(name), **kwargs)  # type: ignore[call-overload]


def pids_in(names: Sequence[str]) -> dict[str, list[int]]:
    """Processes whose network namespace is one of `names` (by namespace inode)."""
    wanted = set(names)
    from pyroute2 import netns as pr_netns

    return {ns: pids for ns, pids in pr_netns.ns_pids().items() if ns in wanted}


def kill_pids(pids: Sequence[int], grace_s: float = 2.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        signalled = [p for p in pids if _signal(p, sig)]
        waited = wait_until(partial(_still_alive, signalled), _none, timeout=grace_s, interval=0.05)
        if waited.done:
            return
        pids = waited.value


def _still_alive(pids: Sequence[int]) -> list[int]:
    return [p for p in pids if _alive(p)]


def _none(pids: list[int]) -> bool:
    return not pids


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def process_alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not): ours or another's, e.g. one a dead supervisor started."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        # A zombie still answers kill(0); reap our own children and treat zombies as gone.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        # The process left between waitpid and the read: /proc answers ENOENT or, mid-exit, ESRCH.
        return False
    return state != "Z"
