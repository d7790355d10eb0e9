"""DNS's part of the plan: the zone's records, and a DNS service behind a socket filter on each edge. Pure."""

from __future__ import annotations

from edgesim.dns.section import Dns
from edgesim.plan.builder import PlanBuilder
from edgesim.plan.naming import DNS_LIMIT_FILE, dns_socket
from edgesim.plan.records import DnsPlan, ServicePlan

DNS_MODULE = "edgesim.dns.server"
DNS_METRICS_PORT = 9436  # beside the XDP agent's 9435 and the tenant agent's 9180


def plan_nodes(b: PlanBuilder) -> None:
    """With a `dns:` section: the lab's DNS plan, and the DNS service on every edge."""
    dns = b.topology.dns
    if dns is None:
        return
    edges = b.with_role("edge")
    plan = DnsPlan(
        zone=dns.zone,
        records=_records(b, dns),
        serves=[str(vip.address) for vip in b.topology.vips],
        rate=dns.limit.rate,
        burst=dns.limit.burst,
        enabled=dns.limit.enabled,
        limit_file=DNS_LIMIT_FILE,
        sockets={edge.name: dns_socket(edge.name) for edge in edges},
    )
    b.sections["dns"] = plan
    for edge in edges:
        edge.services.append(_service(edge.name, plan, edge.metrics_listen(DNS_METRICS_PORT)))


def _records(b: PlanBuilder, dns: Dns) -> dict[str, str]:
    """www and ns1 on the first VIP, vipN per VIP, each customer server by its node name, then the extras."""
    topology = b.topology
    vips = [str(vip.address) for vip in topology.vips]
    records = {"ns1": vips[0], "www": vips[0]}
    records |= {f"vip{n}": vip for n, vip in enumerate(vips, start=1)}
    for name, node in topology.nodes.items():
        if topology.is_customer_server(name) and node.address is not None:
            records[name.replace("_", "-")] = str(node.address)
    records |= {label: str(address) for label, address in dns.names.items()}
    return records


def _service(edge: str, plan: DnsPlan, metrics: str | None) -> ServicePlan:
    """The edge's DNS service; `up` waits for its control socket, made once the filter is attached."""
    sock = plan.sockets[edge]
    args = ["--name", edge, "--zone", plan.zone, "--socket", sock, "--limit-file", plan.limit_file]
    args += [word for address in plan.serves for word in ("--serve", address)]
    args += [word for label, address in plan.records.items() for word in ("--record", f"{label}={address}")]
    args += ["--rate", str(plan.rate), "--burst", str(plan.burst)]
    if not plan.enabled:
        args.append("--count-only")
    if metrics is not None:  # with a management network, for the lab's Prometheus
        args += ["--metrics", metrics]
    return ServicePlan(name="dns", module=DNS_MODULE, args=args, listens=[f"unix:{sock}"], metrics=metrics)
