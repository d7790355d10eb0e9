"""`edgesim dispatch bind|unbind|list|register|unregister`: the edges' sk_lookup bindings at run time."""

from __future__ import annotations

from invoke import Collection, Context, task
from rich.table import Table

from edgesim import runtime
from edgesim.dispatch import control
from edgesim.taskutil import console, need_root, out, user_errors

HELP = {
    "label": "the label (a-z, 0-9, -), e.g. spectrum",
    "protocol": "tcp | udp (default tcp)",
    "prefix": "destination prefix inside the VIP pool, e.g. 198.51.100.64/26",
    "port": "a port, or `all` for every port of the prefix (default all)",
    "service": "the planned service whose socket registers, e.g. spectrum",
    "listen": "the address:port that service's socket is bound to, e.g. 127.0.0.1:7000",
    "lab": "lab (default: the only lab up)",
}


@task(help={k: HELP[k] for k in ("label", "protocol", "prefix", "port", "lab")}, auto_shortflags=False)
@user_errors
def bind(
    c: Context, label: str, prefix: str, port: str = "all", protocol: str = "tcp", lab: str | None = None
) -> None:
    """Bind (protocol, prefix, port or all ports) to a label on every edge (replaces the same binding)."""
    need_root("dispatch bind")
    name = runtime.resolve_lab(lab)
    binding = control.parse_binding(label, protocol, prefix, port)
    control.bind(name, binding)
    console.print(f"bound {binding.text()} on every edge of {name}")


@task(help={k: HELP[k] for k in ("protocol", "prefix", "port", "lab")}, auto_shortflags=False)
@user_errors
def unbind(c: Context, prefix: str, port: str = "all", protocol: str = "tcp", lab: str | None = None) -> None:
    """Remove a binding from every edge: its traffic goes to the kernel's own socket lookup again."""
    need_root("dispatch unbind")
    name = runtime.resolve_lab(lab)
    control.unbind(name, protocol, prefix, port)
    console.print(f"unbound {protocol} {prefix} port {port} on every edge of {name}")


@task(help={k: HELP[k] for k in ("label", "service", "listen", "protocol", "lab")}, auto_shortflags=False)
@user_errors
def register(
    c: Context, label: str, service: str, listen: str, protocol: str = "tcp", lab: str | None = None
) -> None:
    """Register a service's socket under a label on every edge that runs it (follows its restarts)."""
    need_root("dispatch register")
    name = runtime.resolve_lab(lab)
    control.register(name, label, service, listen, protocol)
    console.print(f"registered {service}'s socket on {listen} under {label} on every edge of {name}")


@task(help={k: HELP[k] for k in ("label", "lab")})
@user_errors
def unregister(c: Context, label: str, lab: str | None = None) -> None:
    """Take a label's socket out of every edge's socket map: its bindings then drop new connections."""
    need_root("dispatch unregister")
    name = runtime.resolve_lab(lab)
    control.unregister(name, label)
    console.print(f"{label} has no socket on the edges of {name} now")


@task(name="list", help={"lab": HELP["lab"]})
@user_errors
def list_bindings(c: Context, lab: str | None = None) -> None:
    """The bindings and, per edge and label, lookups, misses, drops and whether a socket is registered."""
    need_root("dispatch list")
    name = runtime.resolve_lab(lab)
    table = control.table(name)
    bindings = Table(title=f"sk_lookup bindings, lab {name} (every edge)")
    for column in ("protocol", "prefix", "port", "label"):
        bindings.add_column(column)
    for b in table.bindings:
        bindings.add_row(b.protocol, str(b.prefix), str(b.port or "all"), b.label)
    counters = Table(title="per label")
    for column in ("edge", "label", "socket", "lookups", "misses", "drops"):
        counters.add_column(column, justify="right")
    for edge, stats in control.counters(name).items():
        for label, c_ in stats["labels"].items():
            registered = "registered" if c_["registered"] else f"none ({c_['problem'] or 'not registered'})"
            counters.add_row(edge, label, registered, str(c_["lookups"]), str(c_["misses"]), str(c_["drops"]))
    out.print(bindings)
    out.print(counters)


ns = Collection("dispatch", bind, unbind, register, unregister, list_bindings)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
