"""GRE in eBPF from Python: compile gre.c for a tunnel endpoint, attach it, fill its maps, read counters."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

from edgesim.bpf import loader

if TYPE_CHECKING:
    import bcc

SOURCE = loader.BPF_DIR / "gre.c"
# The verdicts of gre_structs.h, in order.
VERDICTS = (
    "encapsulated",
    "decapsulated",
    "not_tunneled",
    "unknown_remote",
    "spoofed",
    "malformed",
    "wrong_tenant",
    "error",
)


@dataclass(frozen=True)
class Route:
    """Where a tenant prefix leads: the tenant and the tunnel remote its traffic is sent to."""

    tenant: int
    remote: IPv4Address


def _be32(address: IPv4Address) -> int:
    """An address as the native integer whose bytes are the address in network order (a __be32 in C)."""
    return int(struct.unpack("=I", address.packed)[0])


def _address(be32: int) -> IPv4Address:
    return IPv4Address(struct.pack("=I", be32))


class GreEndpoint:
    """One compiled copy of gre.c for one tunnel endpoint: its two TC programs and its maps."""

    def __init__(self, local: IPv4Address, *, by_source: bool, check_source: bool, mark_base: int) -> None:
        params = {
            "GRE_LOCAL": hex(int(local)),
            "ENCAP_BY_SOURCE": int(by_source),
            "DECAP_CHECK_SOURCE": int(check_source),
            "TENANT_MARK_BASE": hex(mark_base),
        }
        self.program: bcc.BPF = loader.compile_program(SOURCE, params=params)
        self.encap_fd = loader.load_tc(self.program, "gre_encap")
        self.decap_fd = loader.load_tc(self.program, "gre_decap")

    def attach_encap(self, namespace: str, ifname: str) -> None:
        """Encapsulate what leaves ifname (egress) when it belongs to a tunnel."""
        loader.attach_tc(namespace, ifname, self.encap_fd, "egress", "gre_encap")

    def attach_decap(self, namespace: str, ifname: str) -> None:
        """Decapsulate GRE for this endpoint arriving on ifname (ingress) from a known remote."""
        loader.attach_tc(namespace, ifname, self.decap_fd, "ingress", "gre_decap")

    def sync(self, prefixes: Mapping[IPv4Network, Route], remotes: Mapping[IPv4Address, int]) -> None:
        """Make the maps hold exactly these prefix routes and tunnel remotes (add, change, remove entries)."""
        table = self.program[b"prefixes"]
        wanted = {
            (net.prefixlen, _be32(net.network_address)): (route.tenant, _be32(route.remote))
            for net, route in prefixes.items()
        }
        for key in list(table.keys()):
            if (key.prefixlen, key.addr) not in wanted:
                del table[key]
        for (prefixlen, addr), (tenant, remote) in wanted.items():
            table[table.Key(prefixlen, addr)] = table.Leaf(tenant, remote)
        peers = self.program[b"remotes"]
        wanted_peers = {_be32(address): tenant for address, tenant in remotes.items()}
        for key in list(peers.keys()):
            if key.value not in wanted_peers:
                del peers[key]
        for address, tenant in wanted_peers.items():
            peers[peers.Key(address)] = peers.Leaf(tenant)

    def remotes(self) -> dict[IPv4Address, int]:
        """The tunnel remotes in the map now, and their tenants."""
        return {_address(k.value): v.value for k, v in self.program[b"remotes"].items()}

    def counters(self) -> dict[tuple[int, str], tuple[int, int]]:
        """(tenant, verdict) -> (packets, bytes), summed over the CPUs."""
        totals = {}
        for key, per_cpu in self.program[b"counters"].items():
            verdict = VERDICTS[key.verdict] if key.verdict < len(VERDICTS) else str(key.verdict)
            totals[(key.tenant, verdict)] = (sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu))
        return totals
