"""Node roles: each configures one node from its slice of the plan."""

from edgesim.nodes.base import NodeRole
from edgesim.nodes.customer import Customer
from edgesim.nodes.edge import Edge
from edgesim.nodes.host import Host
from edgesim.nodes.mgmt import Mgmt
from edgesim.nodes.router import Router
from edgesim.plan import LabPlan, NodePlan

ROLES: dict[str, type[NodeRole]] = {
    "router": Router,
    "edge": Edge,
    "host": Host,
    "customer": Customer,
    "mgmt": Mgmt,
}


def role_for(plan: LabPlan, node: NodePlan) -> NodeRole:
    """The role object that configures `node`."""
    return ROLES[node.role](plan, node)
