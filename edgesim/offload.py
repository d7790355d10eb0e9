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
    _set_flag_here(ifname, "tx-checksumming", "transmit checksum offload", enabled, where)


def set_gro(netns: str, ifname: str, enabled: bool) -> None:
    """`ethtool -K IFNAME gro on|off` in `netns`.

    On a veth, GRO also gives the receiving end a NAPI context of its own: what arrives is taken off one
    ring in order (instead of the sending CPU's backlog, which reorders a flow whose sender moves between
    CPUs), and what an XDP program passes is merged again into large segments before the stack sees it.
    """
    with namespaces.inside(netns):
        where = f"{netns}/{ifname}"
        _set_flag_here(ifname, "generic-receive-offload", "generic receive offload", enabled, where)


def tune_veth_pair(
    ns_a: str, ifname_a: str, ns_b: str, ifname_b: str, gro: tuple[bool, bool] = (True, True)
) -> None:
    """GRO on the ends of a new veth pair that `gro` names: such an end receives on a NAPI ring of its own,
    in order.

    Without it a veth hands what it receives to the sending CPU's backlog: a flow whose sender moves
    between the two CPUs is reordered (measured: thousands of spurious retransmissions a second), and what
    the edges' XDP programs pass reaches the stack as 1500-byte packets (`bench/dataplane.py`).
    No transmit queue in front of the ring (a veth has none): one held the sender back instead of dropping
    a burst, but under a flood it stayed full and tail-dropped the BGP and BFD packets behind the flood.
    """
    if gro[0]:
        set_gro(ns_a, ifname_a, True)
    if gro[1]:
        set_gro(ns_b, ifname_b, True)


def _set_flag_here(ifname: str, flag: str, what: str, enabled: bool, where: str) -> None:
    try:
        # Its sockets are bound to the namespace they are opened in: open and use them inside.
        with Ethtool() as ethtool:
            ethtool.set_offload_flag(ifname, flag, int(enabled))
    except EthtoolError as err:
        state = "on" if enabled else "off"
        raise EdgesimError(
            Problem(where or ifname, f"cannot turn {what} {state}: {type(err).__name__} {err}")
        ) from None


def tx_checksum_enabled(netns: str, ifname: str) -> bool:
    """Whether `ifname` in `netns` leaves transmit checksums to the "hardware" (`ethtool -k`: tx)."""
    with namespaces.inside(netns), Ethtool() as ethtool:
        return bool(ethtool.get_offload_flags(ifname)["tx-checksumming"])
