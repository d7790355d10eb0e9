"""Node roles: each configures one node from its slice of the plan, through the backend, and undoes it."""

from edgesim.backends.base import Backend
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


def role_for(plan: LabPlan, node: NodePlan, backend: Backend) -> NodeRole:
    """The role object that configures `node` through `backend`."""
    return ROLES[node.role](plan, node, backend)
