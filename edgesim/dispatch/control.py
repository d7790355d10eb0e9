"""Change and read a running lab's socket dispatch: the bindings table (file, then every edge reloads) and
the counters. `counters(lab)` is the plain per-edge, per-label view that metrics can read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgesim import agentsocket, runtime
from edgesim.dispatch import store
from edgesim.dispatch.bindings import Binding, BindingTable, Registration
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import DispatchPlan


def dispatch_plan(lab: str) -> DispatchPlan:
    """The running lab's dispatch plan, or an error saying it has none."""
    plan = runtime.running_plan(lab).dispatch
    if plan is None:
        raise EdgesimError(
            Problem(f"lab {lab}", "has no socket dispatch", "add a `dispatch:` section to its topology")
        )
    return plan


def request(path: Path, op: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to an edge's dispatch agent and return its answer (EdgesimError when it cannot)."""
    return agentsocket.request(path, "dispatch agent", "is the lab up?", op, timeout)


def _each_edge(lab: str, op: str) -> dict[str, dict[str, Any]]:
    plan, root = dispatch_plan(lab), runtime.state_dir(lab)
    edges = list(plan.sockets)
    with ThreadPoolExecutor(max_workers=len(edges) or 1) as pool:
        answers = pool.map(lambda e: request(root / plan.sockets[e], op), edges)
        return dict(zip(edges, answers, strict=True))


def table(lab: str) -> BindingTable:
    """The bindings table in force."""
    return store.read(runtime.state_dir(lab) / dispatch_plan(lab).table_file)


def _apply(lab: str, new: BindingTable) -> BindingTable:
    store.write(runtime.state_dir(lab) / dispatch_plan(lab).table_file, new)
    _each_edge(lab, "reload")
    return new


def parse_binding(label: str, protocol: str, prefix: str, port: str) -> Binding:
    """A binding from command-line values (`port` a number or `all`); errors name the option to fix."""
    try:
        return Binding(label=label, protocol=protocol, prefix=prefix, port=None if port == "all" else port)
    except ValidationError as err:
        raise EdgesimError(
            [
                Problem(f"--{e['loc'][0]}", e["msg"], "see `edgesim dispatch bind --help`")
                for e in err.errors()
            ]
        ) from None


def bind(lab: str, binding: Binding) -> BindingTable:
    """Add (or replace) a binding on every edge; its prefix must be one the edges serve (pools.vips)."""
    vips = runtime.running_plan(lab).nodes_with_role("edge")[0].anycast
    if not any(binding.prefix.subnet_of(IPv4Network(pool)) for pool in vips):
        raise EdgesimError(
            Problem("--prefix", f"{binding.prefix} is not served by the edges", f"inside {', '.join(vips)}")
        )
    try:
        return _apply(lab, table(lab).with_binding(binding))
    except ValueError as err:
        raise EdgesimError(Problem("--label", str(err), "unbind labels no longer used")) from None


def unbind(lab: str, protocol: str, prefix: str, port: str) -> BindingTable:
    """Remove a binding from every edge (removing one that is not there changes nothing)."""
    binding = parse_binding("unbind", protocol, prefix, port)
    return _apply(lab, table(lab).without_binding(binding.protocol, binding.prefix, binding.port))


def register(lab: str, label: str, service: str, listen: str, protocol: str = "tcp") -> BindingTable:
    """Register a service's socket (bound to `listen`) under `label` on every edge that runs the service."""
    plan = runtime.running_plan(lab)
    names = {s.name for edge in plan.nodes_with_role("edge") for s in edge.services}
    if service not in names:
        raise EdgesimError(
            Problem("--service", f"no edge runs {service!r}", f"services: {', '.join(sorted(names))}")
        )
    try:
        registration = Registration(label=label, service=service, listen=listen, protocol=protocol)
        return _apply(lab, table(lab).with_registration(registration))
    except ValidationError as err:
        raise EdgesimError(
            [
                Problem(f"--{e['loc'][0]}", e["msg"], "see `edgesim dispatch register --help`")
                for e in err.errors()
            ]
        ) from None


def unregister(lab: str, label: str) -> BindingTable:
    """Take the label's socket out of every edge's map: its bindings then drop what they match."""
    return _apply(lab, table(lab).without_registration(label))


def counters(lab: str) -> dict[str, dict[str, Any]]:
    """Per edge: per label lookups, misses, drops and whether a socket is registered; and the totals."""
    return _each_edge(lab, "stats")
