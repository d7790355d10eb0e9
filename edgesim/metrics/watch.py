"""`edgesim watch`: a refreshing terminal dashboard of the lab, fed from its Prometheus (rich Live):
per-edge packets in and dropped per second, SYN cookies, the LB's forwarded share, BGP; the busiest
mitigation rules; the tenants' tunnel traffic."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.table import Table

from edgesim import runtime
from edgesim.errors import EdgesimError
from edgesim.metrics import client

WINDOW = "10s"
RULES = "edgesim_xdp_ddos_rule_packets_total"
VERDICTS = "edgesim_xdp_ddos_verdicts_total"
LB = "edgesim_xdp_lb_packets_total"  # rate window: five scrapes at the lab's 2 s interval
# Rule kinds whose counters count dropped packets (allow_src counts what it lets through; syn_cookie the
# SYNs answered with a cookie, which the program's own verdicts count too).
DROP_KINDS = "drop_src|drop_port|rate_limit|vip_cap|malformed"

QUERIES = {
    "verdicts": f"sum by (node) (rate({VERDICTS}[{WINDOW}]))",
    "dropped_rules": f'sum by (node) (rate({RULES}{{kind=~"{DROP_KINDS}"}}[{WINDOW}]))',
    "dropped_verdicts": (
        f'sum by (node) (rate({VERDICTS}{{verdict=~"malformed|cookie_ack_bad"}}[{WINDOW}]))'
    ),
    "cookies": f'sum by (node) (rate({VERDICTS}{{verdict="cookie_sent"}}[{WINDOW}]))',
    "stack_cookies": f"sum by (node) (rate(edgesim_kernel_tcp_syncookies_sent_total[{WINDOW}]))",
    "lb_forwarded": f'sum by (node) (rate({LB}{{verdict="forwarded"}}[{WINDOW}]))',
    "lb_total": f'sum by (node) (rate({LB}{{verdict=~"local|forwarded"}}[{WINDOW}]))',
    "bgp_up": "min by (node) (edgesim_bgp_session_up)",
    "drained": "max by (node) (edgesim_bgp_drained)",
}
TOP_RULES = f"topk(5, sum by (rule, kind) (rate({RULES}[{WINDOW}])) > 0)"
GRE = 'edgesim_gre_packets_total{verdict=~"encapsulated|decapsulated"}'
TUNNELS = f"sum by (tenant, verdict) (rate({GRE}[{WINDOW}]))"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def snapshot(lab: str) -> Group:
    """The dashboard's tables, from one round of queries."""
    # Every query at one instant, so that the columns add up (a rate's extrapolation moves between scrapes).
    at = time.time()
    got = {name: client.values(lab, promql, "node", at) for name, promql in QUERIES.items()}
    edges = [n.name for n in runtime.running_plan(lab).nodes_with_role("edge")]
    columns = ("edge", "in pkt/s", "dropped pkt/s", "XDP cookies/s", "stack cookies/s", "LB forwarded", "BGP")
    table = Table(*columns, title=f"lab {lab}, rates over {WINDOW}")
    for edge in edges:
        # A packet reaches one verdict slot unless a drop rule took it first (other rules count it and
        # let it on to a verdict: allow_src, syn_cookie).
        packets = got["verdicts"].get(edge, 0.0) + got["dropped_rules"].get(edge, 0.0)
        dropped = got["dropped_rules"].get(edge, 0.0) + got["dropped_verdicts"].get(edge, 0.0)
        total = got["lb_total"].get(edge)
        share = "-" if not total else f"{100 * got['lb_forwarded'].get(edge, 0.0) / total:.0f} %"
        bgp = {1.0: "[green]Established[/]", 0.0: "[red]down[/]"}.get(got["bgp_up"].get(edge, -1.0), "?")
        if got["drained"].get(edge) == 1.0:
            bgp += " [yellow](drained)[/]"
        style = "bold red" if dropped > 0.5 * packets > 0 else ""
        table.add_row(edge, _rate(packets), _rate(dropped), _rate(got["cookies"].get(edge)),
                      _rate(got["stack_cookies"].get(edge)), share, bgp, style=style)  # fmt: skip
    rules = Table("rule", "kind", "pkt/s (all edges)", title="top mitigation rules")
    for row in client.query(lab, TOP_RULES, at):
        rules.add_row(
            row["metric"].get("rule", "?"), row["metric"].get("kind", "?"), _rate(float(row["value"][1]))
        )
    tunnels = Table("tenant", "direction", "pkt/s (all edges)", title="tenants' GRE tunnels")
    for row in sorted(
        client.query(lab, TUNNELS, at), key=lambda r: (r["metric"]["tenant"], r["metric"]["verdict"])
    ):
        tunnels.add_row(row["metric"]["tenant"], row["metric"]["verdict"], _rate(float(row["value"][1])))
    return Group(table, rules, tunnels)


def run(lab: str, interval: float, console: Console) -> None:
    """Refresh the dashboard every `interval` s until Ctrl-C."""
    from rich.live import Live

    with Live(snapshot(lab), console=console, refresh_per_second=4, screen=False) as live:
        while True:
            time.sleep(interval)
            try:
                live.update(snapshot(lab))
            except EdgesimError as err:
                live.update(Group(f"[red]{err}[/]"))
