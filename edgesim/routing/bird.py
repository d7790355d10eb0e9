"""Render BIRD 2 configuration from the plan: one instance per router or edge. Pure: text in, text out."""

from __future__ import annotations

from pathlib import PurePosixPath

from edgesim.plan import BgpPlan, NodePlan

# The static protocol holding what an edge announces; the edge's BGP session exports only its routes.
ANNOUNCED = "announced"
# After a session fails, wait 1 s before trying again (BIRD's default is 60 s), backing off to 4 s while
# it keeps failing; an edge that comes back rejoins within a few seconds.
ERROR_WAIT_S = (1, 4)
CONNECT_DELAY_S = 1  # BIRD's smallest: 0 would mean "never connect"
CONNECT_RETRY_S = 2


def session_name(peer: str) -> str:
    """The BGP protocol name for the session to node `peer` (prefixed: node names may be BIRD keywords)."""
    return f"bgp_{peer}"


def render_config(lab: str, node: NodePlan) -> str:
    """The BIRD configuration of one node's instance (router or edge)."""
    bgp = _bgp(node)
    parts = [_header(lab, node, bgp), _bfd(bgp)]
    if node.role == "router":
        parts += [_router_kernel(bgp), _router_sessions(bgp)]
    else:
        parts += [_edge_announcements(node, bgp), _edge_session(bgp)]
    return "\n".join(parts)


def render_announcements(node: str, prefixes: list[str], drained: bool) -> str:
    """The include file listing what an edge announces; `drained` holds the announcements back."""
    lines = [
        f"# What {node} announces now. Written by edgesim.routing (announce, withdraw,",
        "# `invoke edge down|up`); do not edit: the next change rewrites it.",
        f"protocol static {ANNOUNCED} {{",
    ]
    if drained:
        lines.append("  disabled;  # drained by `invoke edge down`: nothing is announced until `edge up`")
    lines.append("  ipv4;")
    # Blackhole: the routes only exist to be announced; the edge's kernel never sees them.
    lines += [f"  route {prefix} blackhole;" for prefix in prefixes]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _bgp(node: NodePlan) -> BgpPlan:
    if node.bgp is None:
        raise ValueError(f"node {node.name} runs no BIRD (routing: static, or a host)")
    return node.bgp


def _header(lab: str, node: NodePlan, bgp: BgpPlan) -> str:
    return f"""\
# BIRD 2 configuration of {node.name} ({node.role}) in lab {lab}, rendered by edgesim from the lab's plan.
# Do not edit: edgesim renders it again from the plan (`invoke up`, `invoke bgp.config NODE`).
log stderr all;
timeformat log iso long ms;
router id {bgp.router_id};

# Interfaces and their addresses: BGP and BFD find their directly connected neighbours through them.
protocol device {{
}}
"""


def _bfd(bgp: BgpPlan) -> str:
    detect = bgp.bfd_interval_ms * bgp.bfd_multiplier
    return f"""\
# BFD: a neighbour that misses {bgp.bfd_multiplier} packets at {bgp.bfd_interval_ms} ms is down after \
{detect} ms, and its BGP session with it.
protocol bfd {{
  interface "*" {{
    min rx interval {bgp.bfd_interval_ms} ms;
    min tx interval {bgp.bfd_interval_ms} ms;
    multiplier {bgp.bfd_multiplier};
  }};
}}
"""


def _owned(bgp: BgpPlan) -> str:
    """A BIRD prefix set: the PoP's anycast pools and every prefix inside them."""
    return "[ " + ", ".join(f"{prefix}+" for prefix in bgp.owned) + " ]"


def _session_options(bgp: BgpPlan) -> str:
    return f"""\
  bfd on;
  # GTSM (RFC 5082): sent with TTL 255 and only TTL 255 accepted. The edges' XDP DoS program lets the
  # lab's control traffic past every user rule by this mark, which nothing the router forwards carries.
  ttl security on;
  # Fallback when BFD itself fails (bgp_timers.hold_s; 3 s, the default, is the smallest BGP allows).
  hold time {bgp.hold_s};
  keepalive time {bgp.keepalive_s};
  connect delay time {CONNECT_DELAY_S};
  connect retry time {CONNECT_RETRY_S};
  error wait time {ERROR_WAIT_S[0]}, {ERROR_WAIT_S[1]};
  # A dead edge must leave ECMP now, not linger as a stale route for the graceful restart time.
  graceful restart off;
  debug {{ states }};"""


def _router_kernel(bgp: BgpPlan) -> str:
    return f"""\
# Routes learnt from the edges go to the kernel's main table; equal paths are merged into one multipath
# route (one next hop per edge; the kernel hashes flows over them on the L4 5-tuple).
protocol kernel {{
  ipv4 {{
    import none;
    export where source = RTS_BGP;
  }};
  merge paths on limit {len(bgp.peers)};
}}
"""


def _router_sessions(bgp: BgpPlan) -> str:
    sessions = [
        f"""\
protocol bgp {session_name(peer.node)} from edges {{
  local {peer.local} as {bgp.asn};
  neighbor {peer.address} as {peer.asn};
}}
"""
        for peer in bgp.peers
    ]
    return f"""\
# One eBGP session per edge. The router only listens (the edges connect), accepts nothing but the
# PoP's anycast prefixes, and announces nothing back.
template bgp edges {{
  passive on;
{_session_options(bgp)}
  ipv4 {{
    import where net ~ {_owned(bgp)};
    export none;
  }};
}}

""" + "\n".join(sessions)


def _edge_announcements(node: NodePlan, bgp: BgpPlan) -> str:
    assert bgp.announcements is not None  # every edge's plan names its announcements file
    # Relative includes are read from the directory of this file, where the announcements file lives.
    name = PurePosixPath(bgp.announcements).name
    return f"""\
# What {node.name} announces: its plan's anycast prefixes at first; edgesim.routing rewrites this file and
# reconfigures BIRD to announce, withdraw, or drain (`invoke edge down`).
include "{name}";
"""


def _edge_session(bgp: BgpPlan) -> str:
    (peer,) = bgp.peers
    return f"""\
# The session to the router: announce what the static protocol above holds, and only inside the
# PoP's anycast pools; learn nothing (the edge's default route points at the router).
protocol bgp {session_name(peer.node)} {{
  local {peer.local} as {bgp.asn};
  neighbor {peer.address} as {peer.asn};
{_session_options(bgp)}
  ipv4 {{
    import none;
    export where proto = "{ANNOUNCED}" && net ~ {_owned(bgp)};
  }};
}}
"""
