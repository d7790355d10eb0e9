"""Tenants' part of the plan: the management node running the config store, linked to every edge; each
edge's tenant agent, GRE endpoint and tenant prefixes; each customer site router's end of the tunnel. Pure.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from edgesim.model import INFRA_RANGE, MGMT_NODE, Topology
from edgesim.plan.addressing import Allocator, gre_endpoint, host_address, infra_block
from edgesim.plan.builder import NodeDraft, PlanBuilder
from edgesim.plan.naming import STORE_DIR
from edgesim.plan.records import InterfacePlan, ServicePlan, TenancyPlan, TunnelPlan
from edgesim.plan.roles import COMMON_SYSCTLS, ROLE_SYSCTLS
from edgesim.tenants.spec import TenantSpec

TENANT_AGENT_MODULE = "edgesim.tenants.agent"
STORE_PORT = 2379
STORE_PEER_PORT = 2380
TENANT_AGENT_PORT = 9180
# Edges serving tenants receive, from their tenant namespaces, GRE packets whose source (the anycast GRE
# endpoint) is one of their own addresses; without accept_local the kernel drops them as martians.
TENANT_EDGE_SYSCTLS = {
    "net.ipv4.conf.all.accept_local": "1",
    "net.ipv4.conf.default.accept_local": "1",
}


def plan_links(b: PlanBuilder) -> None:
    """The management network: a link from the management node to every edge."""
    if not b.topology.tenants:
        return
    b.interfaces[MGMT_NODE] = []
    mgmt = Allocator(infra_block(b.topology.pools.infra, "management"), "pools.infra")
    for edge in b.topology.nodes_with_role("edge"):
        b.add_link(MGMT_NODE, edge, mgmt.next())


def plan_nodes(b: PlanBuilder) -> None:
    """The store's node (first: it is seeded before the agents can report ready), agents and tunnels."""
    topology = b.topology
    if not topology.tenants:
        return
    gre = str(gre_endpoint(topology.pools.gre))
    specs = _tenant_specs(topology, b.interfaces)
    tenancy = TenancyPlan(
        store_node=MGMT_NODE,
        store_url=f"http://127.0.0.1:{STORE_PORT}",
        gre_endpoint=gre,
        prefix_pool=str(topology.pools.tenants),
        site_pool=str(topology.pools.internet),
        veth_pool=str(infra_block(topology.pools.infra, "tenant veths")),
        refused=refused_ranges(topology),
    )
    b.sections["tenancy"] = tenancy
    b.sections["tenants"] = specs
    interfaces = b.interfaces[MGMT_NODE]
    mgmt = NodeDraft(
        name=MGMT_NODE,
        role="mgmt",
        interfaces=interfaces,
        sysctls={**COMMON_SYSCTLS, **ROLE_SYSCTLS["mgmt"]},
        services=[_etcd_service(b.lab, interfaces)],
    )
    b.add_node(mgmt, first=True)
    for edge in b.with_role("edge"):
        edge.loopback.append(f"{gre}/32")
        edge.anycast += [f"{gre}/32", *(str(p) for spec in specs for p in spec.prefixes)]
        edge.sysctls.update(TENANT_EDGE_SYSCTLS)
        edge.services.append(_agent_service(b.lab, edge, tenancy))
    for name, node in topology.nodes.items():
        if node.role == "customer" and not topology.is_customer_server(name):
            spec = next(s for s in specs if s.name == node.tenant)
            site = b.nodes[name]
            site.tunnel = TunnelPlan(
                mode=node.gre or "auto",
                ifname=site.uplink or "",
                local=str(spec.site),
                remote=gre,
                tenant=spec.id,
                prefixes=[str(p) for p in spec.prefixes],
            )


def refused_ranges(topology: Topology) -> dict[str, str]:
    """Where a tenant's traffic (what its site sends through the tunnel) never goes, and why: the lab's
    infrastructure (its pool and the whole 198.18.0.0/15 benchmarking range it and the hosts' management
    networks come from), the edges' own services, and every tenant's prefixes (tenants meet only through
    the internet, each behind its own firewall)."""
    pools = topology.pools
    ranges = [(INFRA_RANGE, "infrastructure"), (pools.infra, "infrastructure")]
    ranges += [(pools.vips, "anycast"), (pools.gre, "anycast"), (pools.tenants, "tenant")]
    kept: dict[str, str] = {}
    for net, reason in ranges:
        if not any(net.subnet_of(IPv4Network(other)) for other in kept):
            kept[str(net)] = reason
    return kept


def _tenant_specs(topology: Topology, interfaces: dict[str, list[InterfacePlan]]) -> list[TenantSpec]:
    """The store records of the topology's tenants: ids in file order, the site router's public address."""
    specs = []
    for index, (name, tenant) in enumerate((topology.tenants or {}).items(), start=1):
        public = next(i for i in interfaces[tenant.site] if topology.nodes[i.peer_node].role == "router")
        specs.append(
            TenantSpec(
                name=name,
                id=index,
                prefixes=list(tenant.prefixes),
                site=IPv4Address(host_address(public.address)),
                rules=list(tenant.firewall),
            )
        )
    return specs


def _etcd_service(lab: str, interfaces: list[InterfacePlan]) -> ServicePlan:
    """etcd in the management node: one member, listening on loopback and on its end of every edge link."""
    local = f"http://127.0.0.1:{STORE_PORT}"
    clients = [local, *(f"http://{host_address(i.address)}:{STORE_PORT}" for i in interfaces)]
    peer = f"http://127.0.0.1:{STORE_PEER_PORT}"
    options = {
        "--name": lab,
        "--data-dir": STORE_DIR,
        "--listen-client-urls": ",".join(clients),
        "--advertise-client-urls": local,
        "--listen-peer-urls": peer,
        "--initial-advertise-peer-urls": peer,
        "--initial-cluster": f"{lab}={peer}",
        "--logger": "zap",
        "--log-level": "warn",
    }
    args = ["etcd", *(word for option, value in options.items() for word in (option, value))]
    return ServicePlan(name="etcd", module=None, args=args, listens=[f"127.0.0.1:{STORE_PORT}"])


def _agent_service(lab: str, edge: NodeDraft, tenancy: TenancyPlan) -> ServicePlan:
    """The edge's tenant agent: watches the store over the management link and reconciles the edge."""
    mgmt = edge.interface_to(MGMT_NODE)
    listen = f"{host_address(mgmt.address)}:{TENANT_AGENT_PORT}"
    options = {
        "--lab": lab,
        "--edge": edge.name,
        "--store": f"http://{mgmt.peer_address}:{STORE_PORT}",
        "--listen": listen,
        "--uplink": edge.uplink or "",
        "--gre-endpoint": tenancy.gre_endpoint,
        "--veth-pool": tenancy.veth_pool,
    }
    args = [word for option, value in options.items() for word in (option, value)]
    args += [word for net, reason in tenancy.refused.items() for word in ("--refuse", f"{net}={reason}")]
    return ServicePlan(
        name="tenants", module=TENANT_AGENT_MODULE, args=args, listens=[listen], metrics=listen
    )
