"""Small idempotent rtnetlink steps on an open pyroute2 socket, shared by roles, backends and agents."""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


def add_address(ipr: IPRoute, index: int, cidr: str) -> None:
    """Add an address to an interface; one that is already there is fine."""
    address, prefixlen = cidr.split("/")
    try:
        ipr.addr("add", index=index, address=address, prefixlen=int(prefixlen))
    except NetlinkError as err:
        if err.code != errno.EEXIST:
            raise


def remove_address(ipr: IPRoute, index: int, cidr: str) -> None:
    """Remove an address from an interface; one that is not there is fine."""
    address, prefixlen = cidr.split("/")
    try:
        ipr.addr("del", index=index, address=address, prefixlen=int(prefixlen))
    except NetlinkError as err:
        if err.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
            raise


def index_of(ipr: IPRoute, ifname: str) -> int | None:
    """The index of an interface, or None when there is none of that name."""
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None
