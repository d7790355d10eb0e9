"""A scratch network namespace for the socket-program tests: loopback up, and removed with all in it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Network

from pyroute2 import IPRoute, netns

from tests.conftest import require_root


@contextmanager
def scratch_netns(stem: str, local: IPv4Network | None = None) -> Iterator[str]:
    """A namespace named stem + this process's pid, loopback up (with `local` on it); removed afterwards."""
    require_root()
    name = f"{stem}{os.getpid()}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            ipr.link("set", index=lo, state="up")
            if local is not None:
                ipr.addr("add", index=lo, address=str(local.network_address), prefixlen=local.prefixlen)
        yield name
    finally:
        netns.remove(name)
    assert name not in netns.listnetns()
