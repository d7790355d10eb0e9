"""Where traffic may go: only addresses of the lab's own plan, checked before any generator sends a packet.

Every generator (`attack`, `load`, the benchmarks, the in-node probes) aims at a VIP, a tenant prefix or
an address of a lab node; anything else (`attack --vip 8.8.8.8`) is refused with a one-line error. The
in-node programs, which have no plan at hand, check the design's address ranges as a last line.
"""

from __future__ import annotations

from ipaddress import AddressValueError, IPv4Address, IPv4Interface, IPv4Network

from edgesim.errors import EdgesimError, Problem
from edgesim.model import DESIGN_RANGES
from edgesim.plan import LabPlan


def lab_networks(plan: LabPlan) -> dict[str, list[IPv4Network]]:
    """What a generator may aim at in this lab: its VIPs, its tenants' prefixes, its nodes' addresses."""
    hosts = [
        IPv4Interface(address).ip
        for node in plan.nodes.values()
        for address in [*(i.address for i in node.interfaces), *node.loopback]
    ]
    if plan.backplane is not None:
        hosts += [IPv4Interface(port.address).ip for port in plan.backplane.ports]
    return {
        "VIPs": [IPv4Network(vip) for vip in plan.vips],
        "tenant prefixes": [IPv4Network(prefix) for spec in plan.tenants for prefix in spec.prefixes],
        "lab hosts": [IPv4Network(host) for host in hosts],
    }


def parse_address(text: object, option: str) -> IPv4Address:
    """`text` as an IPv4 address, or a one-line error naming the option."""
    try:
        return IPv4Address(str(text).strip())
    except (AddressValueError, ValueError):
        raise EdgesimError(
            Problem(option, f"{text!r} is not an IPv4 address", "e.g. 198.51.100.10")
        ) from None


def check_target(plan: LabPlan, address: object, option: str = "--vip") -> IPv4Address:
    """`address` if the lab's plan owns it (lab_networks), else an EdgesimError: nothing is sent outside."""
    target = parse_address(address, option)
    groups = lab_networks(plan)
    if any(target in net for nets in groups.values() for net in nets):
        return target
    vips = ", ".join(plan.vips) or "none"
    tenants = ", ".join(str(n) for n in groups["tenant prefixes"]) or "none"
    raise EdgesimError(
        Problem(
            option,
            f"{target} is not an address of lab {plan.lab}; traffic never leaves the lab's address plan",
            f"aim at a VIP ({vips}), a tenant prefix ({tenants}) or a lab node's address",
        )
    )


def check_endpoint(plan: LabPlan, endpoint: str, option: str = "--target") -> tuple[IPv4Address, int]:
    """An `address:port` inside the lab (check_target) with a port 1-65535, or a one-line error."""
    host, _, port = str(endpoint).rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise EdgesimError(Problem(option, f"{endpoint!r} has no port 1-65535", "write ADDRESS:PORT"))
    return check_target(plan, host, option), int(port)


def check_design_range(endpoint: str, option: str = "--target") -> tuple[str, int]:
    """For in-node programs (no plan at hand): `address:port` inside the design's ranges, else an error."""
    host, _, port = str(endpoint).rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise EdgesimError(Problem(option, f"{endpoint!r} has no port 1-65535", "write ADDRESS:PORT"))
    address = parse_address(host, option)
    if not any(address in net for net in DESIGN_RANGES.values()):
        ranges = ", ".join(str(n) for n in DESIGN_RANGES.values())
        raise EdgesimError(
            Problem(option, f"{address} is outside the lab's address ranges", f"one of {ranges}")
        )
    return str(address), int(port)
