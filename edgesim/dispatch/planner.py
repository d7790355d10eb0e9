"""Socket dispatch's part of the plan: the prefixes made local on every edge, the bindings table it starts
with, and each edge's dispatch agent, spectrum proxy and shared-port services. Pure.
"""

from __future__ import annotations

from edgesim.dispatch.bindings import Binding, BindingTable, Registration
from edgesim.dispatch.section import Dispatch
from edgesim.plan.addressing import host_address
from edgesim.plan.builder import NodeDraft, PlanBuilder
from edgesim.plan.naming import DISPATCH_TABLE_FILE, SERVICES_FILE, dispatch_socket
from edgesim.plan.records import DispatchPlan, ServicePlan
from edgesim.plan.roles import HTTP_MODULE, listening_service

AGENT_MODULE = "edgesim.dispatch.agent"
DISPATCH_METRICS_PORT = 9437
SPECTRUM_MODULE = "edgesim.dispatch.spectrum"
ORIGIN_MODULE = "edgesim.services.origin"
SPECTRUM_LABEL = "spectrum"
# The services' own sockets are bound on the edge's loopback: sk_lookup hands them their traffic whatever
# they are bound to, so they need neither the prefix's addresses nor its ports.
SPECTRUM_LISTEN = "127.0.0.1:7000"
SHARED_PORT_BASE = 7080


def plan_nodes(b: PlanBuilder) -> None:
    """With a `dispatch:` section: the table, and the agent and services on every edge."""
    dispatch = b.topology.dispatch
    if dispatch is None:
        return
    table = _table(dispatch)
    edges = b.with_role("edge")
    b.sections["dispatch"] = DispatchPlan(
        table=table,
        table_file=DISPATCH_TABLE_FILE,
        sockets={edge.name: dispatch_socket(edge.name) for edge in edges},
    )
    origin = None
    if dispatch.spectrum is not None:
        address = host_address(b.interfaces[dispatch.spectrum.origin][0].address)
        origin = f"{address}:{dispatch.spectrum.origin_port}"
        host = b.nodes[dispatch.spectrum.origin]
        if not any(origin in s.listens for s in host.services):  # the TCP proxy's origin may serve it already
            host.services.append(
                ServicePlan(name="origin", module=ORIGIN_MODULE, args=["--listen", origin], listens=[origin])
            )
    for edge in edges:
        _edge(b, edge, dispatch, origin)


def _table(dispatch: Dispatch) -> BindingTable:
    """The bindings and registrations of the section, labels numbered in order."""
    table = BindingTable()
    if dispatch.spectrum is not None:
        table = table.with_binding(Binding(label=SPECTRUM_LABEL, prefix=dispatch.spectrum.prefix))
        table = table.with_registration(
            Registration(label=SPECTRUM_LABEL, service=SPECTRUM_LABEL, listen=SPECTRUM_LISTEN)
        )
    for index, service in enumerate(dispatch.services):
        table = table.with_binding(Binding(label=service.label, prefix=service.prefix, port=service.port))
        listen = f"127.0.0.1:{SHARED_PORT_BASE + index}"
        table = table.with_registration(
            Registration(label=service.label, service=service.label, listen=listen)
        )
    return table


def _edge(b: PlanBuilder, edge: NodeDraft, dispatch: Dispatch, origin: str | None) -> None:
    """The prefixes local on the edge's loopback, its agent, the proxy and the shared-port services."""
    prefixes = [dispatch.spectrum.prefix] if dispatch.spectrum else []
    prefixes += [service.prefix for service in dispatch.services]
    # On loopback a prefix is local as a whole: every address of it reaches the edge's socket lookup.
    edge.loopback += [str(prefix) for prefix in prefixes if str(prefix) not in edge.loopback]
    sock = dispatch_socket(edge.name)
    args = [
        "--edge",
        edge.name,
        "--table",
        DISPATCH_TABLE_FILE,
        "--services",
        SERVICES_FILE,
        "--socket",
        sock,
    ]
    metrics = edge.metrics_listen(DISPATCH_METRICS_PORT)  # with a management network, for Prometheus
    if metrics is not None:
        args += ["--metrics", metrics]
    edge.services.append(
        ServicePlan(
            name="dispatch", module=AGENT_MODULE, args=args, listens=[f"unix:{sock}"], metrics=metrics
        )
    )
    if dispatch.spectrum is not None and origin is not None:
        edge.services.append(
            listening_service(
                SPECTRUM_MODULE, SPECTRUM_LABEL, edge.name, [SPECTRUM_LISTEN], "--origin", origin
            )
        )
    for index, service in enumerate(dispatch.services):
        listen = f"127.0.0.1:{SHARED_PORT_BASE + index}"
        edge.services.append(
            listening_service(HTTP_MODULE, service.label, f"{edge.name} {service.label}", [listen])
        )
