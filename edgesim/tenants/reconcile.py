"""Make one edge match a set of tenants: namespaces, veths, routes, policy rules, nftables, GRE. Idempotent.

Everything is compared with what is there and changed only where it differs, so applying the same tenants
again changes nothing (firewall counters keep counting), and a piece removed by hand comes back.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.netlink import add_address
from edgesim.offload import tune_veth_pair
from edgesim.plan.naming import TENANT_IFNAME, netns_name, tenant_edge_ifname, tenant_netns
from edgesim.tenants import nft
from edgesim.tenants.gre import GreEndpoint, Route
from edgesim.tenants.spec import (
    MAX_TENANT_ID,
    RULE_PRIORITY_BASE,
    TUNNEL_MTU,
    TenantSpec,
    veth_addresses,
)

# A tenant namespace forwards (hairpin: in and out of its one veth) and must not tell clients to go
# around it with ICMP redirects; like the edges it sees asymmetric traffic, so rp_filter is off.
TENANT_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
}


@dataclass
class EdgeContext:
    """Where the tenants go on this edge: the lab, the edge, its uplink, the GRE endpoint, the veth pool."""

    lab: str
    edge: str
    uplink: str
    gre_endpoint: IPv4Address
    veth_pool: IPv4Network
    mount_ns: str | None = None  # where to name tenant namespaces (namespaces.lab_mount_ns)
    # Where a tenant's traffic never goes (prefix -> reason: infrastructure | anycast | tenant).
    refused: dict[IPv4Network, str] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        """The edge's own namespace."""
        return netns_name(self.lab, self.edge)

    @property
    def tenant_prefix(self) -> str:
        """What every tenant namespace of this edge is called before the tenant's name."""
        return tenant_netns(self.lab, self.edge, "")


@dataclass
class Reconciler:
    """Applies a set of tenants to one edge through one GRE program (compiled once per agent)."""

    context: EdgeContext
    gre: GreEndpoint
    # (namespace, interface, direction) this process attached its programs to; after a restart none are,
    # so the first apply moves every hook to the new program, whose maps this process fills.
    attached: set[tuple[str, str, str]] = field(default_factory=set)

    def apply(self, tenants: dict[str, TenantSpec]) -> list[str]:
        """Make the edge serve exactly these tenants; return what had to change (empty: nothing did)."""
        changes: list[str] = []
        # The maps first: a program attached below (a new tenant, or all of them after a restart) must
        # find its tunnels from its first packet on.
        self._sync_maps(tenants)
        for spec in tenants.values():
            changes += self._tenant(spec)
        changes += self._remove_stale(tenants)
        # Again, now that every tenant's veth exists: decapsulated packets are handed to it.
        self._sync_maps(tenants)
        if nft.apply(self.context.netns, nft.edge_ruleset(tenants.values(), self.context.refused)):
            changes.append("edge marks")
        if self._attach(self.context.netns, self.context.uplink, "ingress"):
            changes.append(f"GRE decapsulation on {self.context.uplink}")
        return changes

    def _sync_maps(self, tenants: dict[str, TenantSpec]) -> None:
        """The GRE maps: tenant prefixes, tunnel remotes, refused ranges, each tenant's veth on this edge."""
        prefixes = {net: Route(t.id, t.site) for t in tenants.values() for net in t.prefixes}
        remotes = {t.site: t.id for t in tenants.values()}
        contexts = {}
        with IPRoute(netns=self.context.netns) as ipr:
            for spec in tenants.values():
                found = ipr.link_lookup(ifname=tenant_edge_ifname(spec.name))
                if found:
                    contexts[spec.id] = found[0]
        self.gre.sync(prefixes, remotes, self.context.refused, contexts)

    def _tenant(self, spec: TenantSpec) -> list[str]:
        changes = []
        ns = tenant_netns(self.context.lab, self.context.edge, spec.name)
        if not namespaces.exists(ns):
            namespaces.create(ns, self.context.mount_ns)
            changes.append(f"{spec.name}: namespace {ns}")
        for key, value in TENANT_SYSCTLS.items():
            if namespaces.read_sysctl(ns, key) != value:
                namespaces.write_sysctl(ns, key, value)
        edge_if = tenant_edge_ifname(spec.name)
        edge_addr, tenant_addr = veth_addresses(self.context.veth_pool, spec.id)
        with IPRoute(netns=self.context.netns) as ipr:
            if not ipr.link_lookup(ifname=edge_if):
                ipr.link(
                    "add",
                    ifname=edge_if,
                    kind="veth",
                    peer={"ifname": TENANT_IFNAME, "net_ns_fd": str(namespaces.NETNS_DIR / ns)},
                )
                tune_veth_pair(self.context.netns, edge_if, ns, TENANT_IFNAME)
                changes.append(f"{spec.name}: veth {edge_if}")
            index = _up(ipr, edge_if, f"{edge_addr}/31")
            wanted = {str(p): str(tenant_addr) for p in spec.prefixes}
            _sync_table(ipr, spec.table, wanted, index)
            if _ensure_rule(ipr, spec):
                changes.append(f"{spec.name}: policy rule fwmark {hex(spec.mark)} lookup {spec.table}")
        with IPRoute(netns=ns) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            index = _up(ipr, TENANT_IFNAME, f"{tenant_addr}/31")
            ipr.route("replace", dst="0.0.0.0/0", gateway=str(edge_addr), oif=index)
            for prefix in spec.prefixes:
                # Back out the way it came, through the GRE program: leave room for its 24 bytes.
                ipr.route(
                    "replace", dst=str(prefix), gateway=str(edge_addr), oif=index, metrics={"mtu": TUNNEL_MTU}
                )
        if nft.apply(ns, nft.tenant_ruleset(spec, self.context.refused)):
            changes.append(f"{spec.name}: firewall ({len(spec.rules)} rules)")
        if self._attach(ns, TENANT_IFNAME, "egress"):
            changes.append(f"{spec.name}: GRE encapsulation towards {spec.site}")
        return changes

    def _attach(self, ns: str, ifname: str, direction: str) -> bool:
        """Attach our program to a hook unless this process already did and it is still there."""
        hook = (ns, ifname, direction)
        name = "gre_decap" if direction == "ingress" else "gre_encap"
        if hook in self.attached and name in loader.tc_programs(ns, ifname, direction):
            return False
        if direction == "ingress":
            self.gre.attach_decap(ns, ifname)
        else:
            self.gre.attach_encap(ns, ifname)
        self.attached.add(hook)
        return True

    def _remove_stale(self, tenants: dict[str, TenantSpec]) -> list[str]:
        changes = []
        prefix = self.context.tenant_prefix
        for ns in namespaces.list_with_prefix(prefix):
            name = ns.removeprefix(prefix)
            if name not in tenants:
                # The veth pair, the routes through it and the programs attached to it go with the namespace.
                namespaces.remove(ns, prefix, self.context.mount_ns)
                self.attached = {hook for hook in self.attached if hook[0] != ns}
                changes.append(f"{name}: removed")
        wanted = {t.rule_priority for t in tenants.values()}
        with IPRoute(netns=self.context.netns) as ipr:
            for rule in ipr.get_rules(family=socket.AF_INET):
                priority = rule.get("FRA_PRIORITY") or 0
                if (
                    RULE_PRIORITY_BASE < priority <= RULE_PRIORITY_BASE + MAX_TENANT_ID
                    and priority not in wanted
                ):
                    ipr.rule(
                        "del", priority=priority, table=rule.get("FRA_TABLE"), fwmark=rule.get("FRA_FWMARK")
                    )
                    changes.append(f"policy rule {priority}: removed")
        return changes


def _up(ipr: IPRoute, ifname: str, cidr: str) -> int:
    """Give an interface its address (keeping it when present) and bring it up; return its index."""
    index = ipr.link_lookup(ifname=ifname)[0]
    add_address(ipr, index, cidr)
    ipr.link("set", index=index, state="up")
    return index


def _sync_table(ipr: IPRoute, table: int, wanted: dict[str, str], index: int) -> None:
    """Make a tenant's routing table hold exactly its prefixes, each via the tenant namespace."""
    for route in ipr.get_routes(family=socket.AF_INET, table=table):
        dst = f"{route.get('RTA_DST')}/{route['dst_len']}"
        if route.get("RTA_TABLE") == table and dst not in wanted:
            ipr.route("del", dst=dst, table=table)
    for dst, gateway in wanted.items():
        ipr.route("replace", dst=dst, gateway=gateway, oif=index, table=table)


def _ensure_rule(ipr: IPRoute, spec: TenantSpec) -> bool:
    """The policy rule `fwmark <mark> lookup <table>` at the tenant's priority; whether it had to be added."""
    for rule in ipr.get_rules(family=socket.AF_INET):
        if rule.get("FRA_PRIORITY") != spec.rule_priority:
            continue
        if rule.get("FRA_FWMARK") == spec.mark and rule.get("FRA_TABLE") == spec.table:
            return False
        ipr.rule(
            "del", priority=spec.rule_priority, table=rule.get("FRA_TABLE"), fwmark=rule.get("FRA_FWMARK")
        )
    ipr.rule("add", priority=spec.rule_priority, fwmark=spec.mark, table=spec.table)
    return True
