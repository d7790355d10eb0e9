"""The L4 load balancer's part of the plan: the edges' backplane, and the health-check listen on each edge.

With two edges or more and room in the infra pool, the edges share a backplane: a bridge in a namespace of
its own and one veth per edge, over which XDP forwards a packet to the edge that owns its flow. Pure.
"""

from __future__ import annotations

from edgesim.errors import EdgesimError, Problem
from edgesim.model import Topology
from edgesim.plan.addressing import host_address, infra_block_if_room
from edgesim.plan.builder import PlanBuilder
from edgesim.plan.naming import (
    BACKPLANE,
    BACKPLANE_BRIDGE,
    BACKPLANE_IFNAME,
    backplane_mac,
    bridge_port,
    netns_name,
)
from edgesim.plan.records import BackplanePlan, BackplanePort

# The backplane's MTU leaves room for the 20-byte IP-in-IP header around a 1500-byte packet.
BACKPLANE_MTU = 1600
# The edges' HTTP service also listens on its backplane address at this port: the health check's target.
HEALTH_PORT = 80


def plan_nodes(b: PlanBuilder) -> None:
    """The backplane, and each edge's HTTP service also answering health checks on its backplane address."""
    backplane = backplane_plan(b.topology)
    b.sections["backplane"] = backplane
    if backplane is None:
        return
    for edge in b.with_role("edge"):
        http = edge.service("http")
        # The other edges' health checks reach the service over the backplane.
        health = f"{host_address(backplane.port_of(edge.name).address)}:{HEALTH_PORT}"
        edge.replace_service(
            http.model_copy(
                update={"args": [*http.args, "--listen", health], "listens": [*http.listens, health]}
            )
        )


def backplane_plan(topology: Topology) -> BackplanePlan | None:
    """A backplane for two or more edges, when the infra pool has room for one."""
    edges = topology.nodes_with_role("edge")
    subnet = infra_block_if_room(topology.pools.infra, "backplane")
    if len(edges) < 2 or subnet is None:
        return None
    if BACKPLANE in topology.nodes:
        raise EdgesimError(
            Problem(f"nodes.{BACKPLANE}", "the name is taken by the edges' backplane", "rename the node")
        )
    hosts = subnet.hosts()
    ports = []
    for edge in edges:
        address = str(next(hosts))
        ports.append(
            BackplanePort(
                edge=edge,
                ifname=BACKPLANE_IFNAME,
                bridge_port=bridge_port(edge),
                address=f"{address}/{subnet.prefixlen}",
                mac=backplane_mac(address),
            )
        )
    return BackplanePlan(
        netns=netns_name(topology.lab, BACKPLANE),
        bridge=BACKPLANE_BRIDGE,
        subnet=str(subnet),
        mtu=BACKPLANE_MTU,
        ports=ports,
    )
