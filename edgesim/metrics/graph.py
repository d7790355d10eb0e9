"""The lab as a picture: nodes by role, links with interface names and addresses, VIPs, tenants and
their GRE tunnels, optionally the live state of each node; rendered as Graphviz dot or a mermaid
flowchart. Pure: the live state is handed in (edgesim.metrics.live gathers it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgesim.plan import LabPlan, NodePlan

# Graphviz styles by node role (mermaid gets the same colours through classDef).
ROLE_STYLE = {
    "router": ("box", "#ffe9a8"),
    "edge": ("box3d", "#b7dcff"),
    "host": ("ellipse", "#e6e6e6"),
    "customer": ("component", "#c9f2c7"),
    "mgmt": ("cylinder", "#f1d4ff"),
}
ROLE_RANK = ("host", "router", "edge", "mgmt", "customer")


@dataclass(frozen=True)
class NodeLive:
    """What a running lab says of one node: healthy or not, and a few words (drained, BGP state)."""

    ok: bool
    notes: list[str] = field(default_factory=list)


def _label_lines(plan: LabPlan, node: NodePlan, live: NodeLive | None) -> list[str]:
    lines = [node.name, f"({node.role})"]
    if node.role == "edge":
        lines.append("VIPs " + ", ".join(plan.vips))
        if plan.tenancy is not None:
            lines.append(f"GRE {plan.tenancy.gre_endpoint}")
    elif node.role == "customer" and node.tunnel is not None:
        tenant = next((t.name for t in plan.tenants if t.id == node.tunnel.tenant), "?")
        lines.append(f"tenant {tenant}: {', '.join(node.tunnel.prefixes)}")
    elif node.role == "mgmt":
        lines.append("etcd, Prometheus")
    if live is not None:
        lines += live.notes or []
    return lines


def _tunnels(plan: LabPlan) -> list[tuple[str, str, str]]:
    """(site router, edge, label) for every tenant's anycast tunnel: one line per tenant, drawn to the
    first edge and labelled as reaching every edge (lines to all of them bury the picture)."""
    edges = [n.name for n in plan.nodes_with_role("edge")]
    if not edges or plan.tenancy is None:
        return []
    found = []
    for node in plan.nodes.values():
        if node.tunnel is not None:
            tenant = next(
                (t.name for t in plan.tenants if t.id == node.tunnel.tenant), str(node.tunnel.tenant)
            )
            found.append((node.name, edges[0], f"GRE {tenant} to {node.tunnel.remote} (every edge)"))
    return found


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(plan: LabPlan, live: dict[str, NodeLive] | None = None) -> str:
    """Graphviz dot: one cluster per role, one edge per link (interfaces and addresses as its labels)."""
    live = live or {}
    out = [
        f"graph {_quote(plan.lab)} {{",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=11, nodesep=0.3, ranksep=1.2];",
        "  node [fontname=Helvetica, fontsize=10, style=filled];",
        "  edge [fontname=Helvetica, fontsize=7, labelfontsize=7, labeldistance=2.5];",
    ]
    for role in ROLE_RANK:
        members = plan.nodes_with_role(role)  # type: ignore[arg-type]
        if not members:
            continue
        title = role + "s"
        if role == "edge" and plan.backplane is not None:
            title += f" (backplane {plan.backplane.subnet})"
        out.append(f"  subgraph cluster_{role} {{ label={_quote(title)}; style=dashed; color=gray60;")
        for node in members:
            shape, colour = ROLE_STYLE.get(node.role, ("box", "white"))
            state = live.get(node.name)
            border = (
                ""
                if state is None
                else (', color="#2a8a2a", penwidth=2' if state.ok else ', color="#d62728", penwidth=3')
            )
            label = "\\n".join(_label_lines(plan, node, state)).replace('"', "'")
            out.append(
                f'    {_quote(node.name)} [shape={shape}, fillcolor="{colour}", label="{label}"{border}];'
            )
        out.append("  }")
    for link in plan.links:
        a, b = plan.nodes[link.a.node], plan.nodes[link.b.node]
        a_if, b_if = a.interface_to(b.name), b.interface_to(a.name)
        # One label mid-line: end labels pile up at the router, which has a link to every node.
        label = f"{a_if.name} {a_if.address}\\n{b_if.name} {b_if.address}"
        out.append(f"  {_quote(a.name)} -- {_quote(b.name)} [label={_quote(label)}];")
    for site, edge, label in _tunnels(plan):
        out.append(
            f'  {_quote(site)} -- {_quote(edge)} [style=dashed, color="#2a8a2a", fontcolor="#2a8a2a", '
            f"constraint=false, label={_quote(label)}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_id(name: str) -> str:
    return "n_" + name


def to_mermaid(plan: LabPlan, live: dict[str, NodeLive] | None = None) -> str:
    """A mermaid flowchart: the same nodes (one per plan node), links and tunnels."""
    live = live or {}
    out = ["flowchart LR"]
    for role in ROLE_RANK:
        members = plan.nodes_with_role(role)  # type: ignore[arg-type]
        if not members:
            continue
        out.append(f"  subgraph {role}s")
        for node in members:
            label = "<br/>".join(_label_lines(plan, node, live.get(node.name))).replace('"', "'")
            out.append(f'    {_mermaid_id(node.name)}["{label}"]:::{node.role}')
        out.append("  end")
    for link in plan.links:
        a, b = plan.nodes[link.a.node], plan.nodes[link.b.node]
        a_if, b_if = a.interface_to(b.name), b.interface_to(a.name)
        label = f"{a_if.name} {a_if.address} / {b_if.name} {b_if.address}"
        out.append(f'  {_mermaid_id(a.name)} ---|"{label}"| {_mermaid_id(b.name)}')
    for site, edge, label in _tunnels(plan):
        out.append(f'  {_mermaid_id(site)} -.-|"{label}"| {_mermaid_id(edge)}')
    for role, (_, colour) in ROLE_STYLE.items():
        out.append(f"  classDef {role} fill:{colour},stroke:#555")
    for name, state in live.items():
        if not state.ok:
            out.append(f"  style {_mermaid_id(name)} stroke:#d62728,stroke-width:3px")
    return "\n".join(out) + "\n"


def mermaid_nodes(text: str) -> set[str]:
    """The node names a mermaid flowchart from to_mermaid declares (for checks)."""
    names = set()
    for line in text.splitlines():
        word = line.strip().split("[", 1)[0]
        if word.startswith("n_") and "[" in line:
            names.add(word.removeprefix("n_"))
    return names
