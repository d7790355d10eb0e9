"""Interface offloads through pyroute2's ethtool module (what `ethtool -K` does), inside a namespace."""

from __future__ import annotations

from pyroute2.ethtool import Ethtool
from pyroute2.ethtool.ioctl import EthtoolError

from edgesim import namespaces
from edgesim.errors import EdgesimError, Problem


def disable_tx_checksum(netns: str, ifname: str) -> None:
    """`ethtool -K IFNAME tx off` in `netns`: the stack computes every checksum of what the interface sends.

    The kernel also drops the offloads that need it (TCP and UDP segmentation), as ethtool's command does.
    """
    with namespaces.inside(netns):
        set_tx_checksum_here(ifname, enabled=False, where=f"{netns}/{ifname}")


def set_tx_checksum_here(ifname: str, enabled: bool, where: str = "") -> None:
    """`ethtool -K IFNAME tx on|off` in the calling thread's namespace (a backend's `enter` puts it there)."""
    try:
        # Its sockets are bound to the namespace they are opened in: open and use them inside.
        with Ethtool() as ethtool:
            ethtool.set_offload_flag(ifname, "tx-checksumming", int(enabled))
    except EthtoolError as err:
        state = "on" if enabled else "off"
        raise EdgesimError(
            Problem(
                where or ifname, f"cannot turn transmit checksum offload {state}: {type(err).__name__} {err}"
            )
        ) from None


def tx_checksum_enabled(netns: str, ifname: str) -> bool:
    """Whether `ifname` in `netns` leaves transmit checksums to the "hardware" (`ethtool -k`: tx)."""
    with namespaces.inside(netns), Ethtool() as ethtool:
        return bool(ethtool.get_offload_flags(ifname)["tx-checksumming"])
