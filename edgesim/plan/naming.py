"""Every name the lab gives a kernel object or a file: namespaces, interfaces, bridge ports, state files.

One place, so that the planner, the backends and the agents derive the same names, and so that every name
that reaches the kernel is checked against its limits here. Pure.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Network

IFNAME_MAX = 15  # IFNAMSIZ - 1: the kernel refuses longer interface names
IFNAME_PREFIX = "eth-"

# The edges' backplane (the L4 load balancer's forwarding path): a bridge in a namespace of its own.
BACKPLANE = "backplane"
BACKPLANE_BRIDGE = "br-backplane"
BACKPLANE_IFNAME = "eth-backplane"
BRIDGE_PORT_PREFIX = "bp-"

# A tenant veth: the edge's end is `t-<tenant>`, the tenant namespace's end is always TENANT_IFNAME.
TENANT_IFNAME = "eth-edge"
TENANT_EDGE_IFNAME_PREFIX = "t-"

# Files a running lab keeps, relative to its state directory (services run there, so these paths work as
# they are in their command lines; `down` removes the directory with everything in it).
RULES_FILE = "mitigation.json"  # the XDP rule set every edge agent loads
LB_STATE_FILE = "lb.json"  # the load balancer's state every edge agent computes its table from
BIRD_DIR = "bird"  # each BIRD's config, include files, control socket and pid file
STORE_DIR = "etcd"  # etcd's data
DNS_LIMIT_FILE = "dns-limit.json"  # the DNS socket filter's per-source limit set at run time
SERVICES_FILE = "services.json"  # the supervisor's report of its services' pids (edgesim.state)
DISPATCH_TABLE_FILE = "dispatch.json"  # the sk_lookup bindings table every edge's dispatch agent applies


def netns_name(lab: str, node: str) -> str:
    """The namespace of a node: `<lab>-<node>`."""
    return f"{lab}-{node}"


def shortened(prefix: str, name: str) -> str:
    """`<prefix><name>`, or over 15 characters its head and a stable hash (distinct names stay distinct)."""
    full = f"{prefix}{name}"
    if len(full) <= IFNAME_MAX:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:5]
    keep = IFNAME_MAX - len(prefix) - len(digest) - 1
    return f"{prefix}{name[:keep]}-{digest}"


def ifname_for(peer: str) -> str:
    """Interface name facing `peer`: `eth-<peer>`, shortened with a stable hash when over 15 characters."""
    return shortened(IFNAME_PREFIX, peer)


def bridge_port(edge: str) -> str:
    """The backplane bridge's port facing an edge: `bp-<edge>`, or `bp-<hash>` when that is too long."""
    port = f"{BRIDGE_PORT_PREFIX}{edge}"
    if len(port) <= IFNAME_MAX:
        return port
    return f"{BRIDGE_PORT_PREFIX}{hashlib.sha1(edge.encode()).hexdigest()[:8]}"


def backplane_mac(address: str) -> str:
    """A locally administered MAC derived from the backplane address (02:e5 + its four bytes)."""
    packed = IPv4Network(f"{address}/32").network_address.packed
    return ":".join(f"{b:02x}" for b in (0x02, 0xE5, *packed))


def tenant_netns(lab: str, edge: str, tenant: str) -> str:
    """The tenant's namespace on one edge: `<lab>-<edge>-<tenant>` (node names have no '-', so no clash)."""
    return f"{lab}-{edge}-{tenant}"


def tenant_edge_ifname(tenant: str) -> str:
    """The edge's end of the tenant veth: `t-<tenant>`, shortened with a stable hash over 15 characters."""
    return shortened(TENANT_EDGE_IFNAME_PREFIX, tenant)


def xdp_agent_socket(edge: str) -> str:
    """The control socket of an edge's XDP agent, relative to the lab's state directory."""
    return f"xdp-{edge}.sock"


def dns_socket(edge: str) -> str:
    """The control socket of an edge's DNS service, relative to the lab's state directory."""
    return f"dns-{edge}.sock"


def proxy_socket(edge: str) -> str:
    """The control socket of an edge's TCP proxy, relative to the lab's state directory."""
    return f"proxy-{edge}.sock"


def dispatch_socket(edge: str) -> str:
    """The control socket of an edge's dispatch agent, relative to the lab's state directory."""
    return f"dispatch-{edge}.sock"


def bird_files(node: str) -> str:
    """The common stem of a node's BIRD files, relative to the lab's state directory."""
    return f"{BIRD_DIR}/{node}"
