"""GRE in eBPF from Python: compile gre.c for a tunnel endpoint, attach it, fill its maps, read counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, NamedTuple

from edgesim.bpf import loader, tables
from edgesim.bpf.tables import be32, from_be32

if TYPE_CHECKING:
    import bcc

SOURCE = loader.BPF_DIR / "gre.c"
# The verdicts of gre_consts.h, in order.
VERDICTS = (
    "encapsulated",
    "decapsulated",
    "not_tunneled",
    "unknown_remote",
    "spoofed",
    "malformed",
    "wrong_tenant",
    "error",
    "to_infrastructure",
    "to_anycast",
    "to_tenant",
    "no_context",
)
# Why an inner destination is refused after decapsulation on an edge -> the verdict that counts it.
REFUSAL_VERDICTS = {"infrastructure": "to_infrastructure", "anycast": "to_anycast", "tenant": "to_tenant"}


@dataclass(frozen=True)
class Route:
    """Where a tenant prefix leads: the tenant and the tunnel remote its traffic is sent to."""

    tenant: int
    remote: IPv4Address


class PrefixKey(NamedTuple):
    """struct prefix_key of gre_structs.h, as edgesim/bpf/tables.py writes it."""

    prefixlen: int
    addr: int  # a __be32


class TenantRoute(NamedTuple):
    """struct tenant_route of gre_structs.h."""

    tenant: int
    remote: int  # a __be32: the tunnel's outer destination


class GreEndpoint:
    """One compiled copy of gre.c for one tunnel endpoint: its two TC programs and its maps."""

    def __init__(
        self,
        local: IPv4Address,
        *,
        by_source: bool,
        check_source: bool,
        mark_base: int,
        to_context: bool = False,
    ) -> None:
        params = {
            "GRE_LOCAL": hex(int(local)),
            "ENCAP_BY_SOURCE": int(by_source),
            "DECAP_CHECK_SOURCE": int(check_source),
            "TENANT_MARK_BASE": hex(mark_base),
            "DECAP_TO_CONTEXT": int(to_context),
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

    def sync(
        self,
        prefixes: Mapping[IPv4Network, Route],
        remotes: Mapping[IPv4Address, int],
        refused: Mapping[IPv4Network, str] | None = None,
        contexts: Mapping[int, int] | None = None,
    ) -> None:
        """Make the maps hold exactly these prefix routes, tunnel remotes and, on an edge, the refused inner
        destinations (prefix -> a REFUSAL_VERDICTS reason) and each tenant's veth ifindex."""
        wanted = {
            PrefixKey(net.prefixlen, be32(net.network_address)): TenantRoute(route.tenant, be32(route.remote))
            for net, route in prefixes.items()
        }
        tables.sync(self.program[b"prefixes"], wanted, PrefixKey, TenantRoute)
        peers = {be32(address): tenant for address, tenant in remotes.items()}
        tables.sync(self.program[b"remotes"], peers, int, int)
        ranges = {
            PrefixKey(net.prefixlen, be32(net.network_address)): VERDICTS.index(REFUSAL_VERDICTS[reason])
            for net, reason in (refused or {}).items()
        }
        tables.sync(self.program[b"refused"], ranges, PrefixKey, int)
        tables.sync(self.program[b"contexts"], dict(contexts or {}), int, int)

    def remotes(self) -> dict[IPv4Address, int]:
        """The tunnel remotes in the map now, and their tenants."""
        return {from_be32(k.value): v.value for k, v in self.program[b"remotes"].items()}

    def counters(self) -> dict[tuple[int, str], tuple[int, int]]:
        """(tenant, verdict) -> (packets, bytes), summed over the CPUs."""
        totals = {}
        for key, per_cpu in self.program[b"counters"].items():
            verdict = VERDICTS[key.verdict] if key.verdict < len(VERDICTS) else str(key.verdict)
            totals[(key.tenant, verdict)] = (sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu))
        return totals
