"""pyroute2's ethtool turns a veth's transmit checksum offload off in a namespace, as `ethtool -K tx off`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from edgesim import namespaces, offload
from edgesim.errors import EdgesimError
from tests.conftest import E2E_LAB, require_root

NETNS = f"{E2E_LAB}-offload"


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair, both ends up, inside a scratch namespace of this session's prefix."""
    require_root()
    namespaces.create(NETNS)
    try:
        with IPRoute(netns=NETNS) as ipr:
            ipr.link("add", ifname="off-a", kind="veth", peer={"ifname": "off-b"})
            for name in ("off-a", "off-b"):
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        yield NETNS, "off-a"
    finally:
        namespaces.remove(NETNS, f"{E2E_LAB}-")


def features(netns: str, ifname: str) -> dict[str, str]:
    """`ethtool -k` as name → state, for comparing with the ethtool command's own result."""
    out = namespaces.run_in(
        netns, ["ethtool", "-k", ifname], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.strip().split(": ", 1) for line in out.splitlines()[1:] if ": " in line)


def test_tx_checksum_off_like_the_ethtool_command(veth: tuple[str, str]) -> None:
    netns, ifname = veth
    assert offload.tx_checksum_enabled(netns, ifname), "a veth offloads transmit checksums by default"
    offload.disable_tx_checksum(netns, ifname)
    assert not offload.tx_checksum_enabled(netns, ifname)
    if shutil.which("ethtool"):
        namespaces.run_in(netns, ["ethtool", "-K", "off-b", "tx", "off"], capture_output=True, check=True)
        assert features(netns, ifname) == features(netns, "off-b"), "the same features as `ethtool -K tx off`"
        assert features(netns, ifname)["tx-tcp-segmentation"].startswith("off")


def test_an_unknown_interface_is_an_error(veth: tuple[str, str]) -> None:
    netns, _ = veth
    with pytest.raises(EdgesimError) as caught:
        offload.disable_tx_checksum(netns, "nosuch0")
    assert str(caught.value).startswith(f"{netns}/nosuch0: cannot turn transmit checksum offload off")
