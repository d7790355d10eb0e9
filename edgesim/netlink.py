"""Small idempotent rtnetlink operations on an open pyroute2 socket, shared by roles, backends and agents."""

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


# What `ethtool -K IF tx on|off` switches: every transmit checksum offload the device has.
_TX_CHECKSUM_FEATURES = (
    "tx-checksum-ipv4",
    "tx-checksum-ip-generic",
    "tx-checksum-ipv6",
    "tx-checksum-fcoe-crc",
    "tx-checksum-sctp",
)


def set_tx_checksum(ifname: str, offload: bool) -> None:
    """Switch an interface's transmit checksum offload (like `ethtool -K IF tx on|off`), in this namespace.

    pyroute2's Ethtool speaks the ioctl interface, so its socket belongs to the calling thread's namespace.
    """
    from pyroute2.ethtool import Ethtool

    ethtool = Ethtool()
    try:
        features = ethtool.get_features(ifname)
        for name in _TX_CHECKSUM_FEATURES:
            feature = features.features.get(name)
            if feature is not None and feature.available:
                feature.enable = offload
        ethtool.set_features(ifname, features)
    finally:
        ethtool.close()
