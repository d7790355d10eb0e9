"""Small pyroute2 steps shared by node roles and features: each idempotent, so a re-run changes nothing."""

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
