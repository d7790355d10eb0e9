"""A lab plan as a containerlab topology (`.clab.yml`): the description containerlab deploys (pure).

Every plan node becomes a `kind: linux` container; every plan link a veth endpoint pair with the plan's
interface names, so role code finds the interfaces it expects. The backplane bridge becomes one more
container, `backplane`, holding the bridge, as the namespace backend holds it in a namespace of its own:
containerlab's `bridge` kind would put it in the host's root namespace, where nothing of the lab may live.
"""

from __future__ import annotations

import zlib
from ipaddress import IPv4Network
from typing import Any

import yaml

from edgesim.plan import LabPlan
from edgesim.plan.naming import BACKPLANE

# Management networks of Docker and containerlab live in 198.19.0.0/16, never RFC 1918 (containerlab's own
# default is 172.20.20.0/24). 198.19.0.0/24 is Docker's default bridge (setup's daemon.json); each lab
# takes one /24 after it, chosen from its name so two labs side by side differ.
MGMT_POOL = IPv4Network("198.19.0.0/16")
MGMT_FIRST_LAB_BLOCK = 1
LAB_LABEL = "edgesim.lab"
# The node image edgesim builds locally (no registry is reachable); its builder tags every build so.
NODE_IMAGE = "edgesim-node:local"
NODE_CAPABILITIES = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN", "BPF", "PERFMON", "IPC_LOCK", "SYS_PTRACE")
HEADER = "# rendered by edgesim from the lab's plan; deploy with: containerlab deploy -t FILE\n"


def container_name(lab: str, node: str) -> str:
    """The Docker container containerlab makes for a node: `clab-<lab>-<node>`."""
    return f"clab-{lab}-{node}"


def mgmt_network(lab: str) -> str:
    """The Docker network of the lab's management interfaces."""
    return f"edgesim-{lab}"


def mgmt_subnet(lab: str) -> IPv4Network:
    """The lab's management /24 in 198.19.0.0/16, the same for the same name on every run."""
    blocks = list(MGMT_POOL.subnets(new_prefix=24))[MGMT_FIRST_LAB_BLOCK:-1]
    return blocks[zlib.crc32(lab.encode()) % len(blocks)]


def render(plan: LabPlan, image: str) -> dict[str, Any]:
    """The `.clab.yml` document for the plan, its nodes running `image`."""
    nodes = {n.name: _node(plan, n.name, n.role) for n in plan.nodes.values()}
    links = [_veth((link.a.node, link.a.ifname), (link.b.node, link.b.ifname)) for link in plan.links]
    if plan.backplane is not None:
        nodes[BACKPLANE] = _node(plan, BACKPLANE, "backplane")
        links += [
            _veth((port.edge, port.ifname), (BACKPLANE, port.bridge_port), mtu=plan.backplane.mtu)
            for port in plan.backplane.ports
        ]
    subnet = mgmt_subnet(plan.lab)
    return {
        "name": plan.lab,
        "mgmt": {
            "network": mgmt_network(plan.lab),
            "ipv4-subnet": str(subnet),
            "ipv4-gw": str(subnet.network_address + 1),
        },
        "topology": {"kinds": {"linux": _linux(image)}, "nodes": nodes, "links": links},
    }


def render_text(plan: LabPlan, image: str) -> str:
    """The `.clab.yml` file for the plan, as containerlab reads it."""
    return HEADER + yaml.safe_dump(render(plan, image), sort_keys=False)


def _linux(image: str) -> dict[str, Any]:
    # Nodes attach XDP and TC programs (BPF, PERFMON, SYS_ADMIN for bpffs), load nftables rulesets and set
    # sysctls in their namespaces (NET_ADMIN), send raw packets (NET_RAW) and lock BPF maps in memory
    # (IPC_LOCK). Not `privileged`: Docker then asks for every capability it knows, and fails where the
    # host's bounding set lacks one (this CI's has no CAP_SYS_RESOURCE). Docker's seccomp profile refuses
    # bpf(2) to containers, hence unconfined. No management interface (network-mode none): Docker would
    # give every node a default route into the host's root namespace, a way out of the lab. The container
    # only sleeps; the lab's supervisor starts each service inside it.
    return {
        "image": image,
        "restart-policy": "no",
        "network-mode": "none",
        "cap-add": list(NODE_CAPABILITIES),
        "security-opts": ["seccomp=unconfined", "apparmor=unconfined"],
        "cmd": "sleep infinity",
    }


def _node(plan: LabPlan, name: str, role: str) -> dict[str, Any]:
    return {"kind": "linux", "labels": {LAB_LABEL: plan.lab, "edgesim.node": name, "edgesim.role": role}}


def _veth(a: tuple[str, str], b: tuple[str, str], mtu: int | None = None) -> dict[str, Any]:
    link: dict[str, Any] = {
        "type": "veth",
        "endpoints": [{"node": node, "interface": ifname} for node, ifname in (a, b)],
    }
    if mtu is not None:
        link["mtu"] = mtu
    return link
