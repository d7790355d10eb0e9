"""`invoke mitigate add|del|list|stats`: the lab's XDP DoS rules at run time."""

from __future__ import annotations

import time

from invoke import Collection, Context, task
from rich.live import Live
from rich.table import Table

from edgesim import runtime
from edgesim.mitigation import control
from edgesim.mitigation.rules import RULE_KINDS, RuleSet
from edgesim.taskutil import console, need_root, out, user_errors

RULE_HELP = {
    "kind": " | ".join(RULE_KINDS),
    "name": "rule name (default: derived, e.g. 'drop_src 100.127.0.0/16')",
    "prefix": "source prefix (allow_src, drop_src), e.g. 100.127.0.0/16",
    "proto": "tcp | udp (drop_port, payload_match)",
    "src-port": "source port to drop (drop_port), e.g. 53 for DNS reflection",
    "dst-port": "destination port to drop (drop_port) or to look into (payload_match)",
    "match": "syn | udp | icmp (rate_limit)",
    "rate": "per second: packets (rate_limit per source, vip_cap per VIP), connections (conn_rate)",
    "burst": "packets or connections allowed at once (rate_limit, vip_cap, conn_rate)",
    "vip": "the VIP (syn_cookie, vip_cap, conn_limit, conn_rate; optional for payload_match)",
    "port": "the VIP's port (syn_cookie, conn_limit, conn_rate)",
    "count": "concurrent connections allowed per source (conn_limit)",
    "set-name": "the blocklist's nftables set, e.g. offenders (blocklist)",
    "timeout-s": "seconds a source stays in the blocklist by default (blocklist; default 60)",
    "block-set": "put offenders in this blocklist (conn_limit, conn_rate, payload_match)",
    "block-s": "for this many seconds (with --block-set)",
    "offset": "bytes into the TCP/UDP payload where --hex must be (payload_match; default 0)",
    "hex": "the payload bytes to match, in hex, e.g. 00ff (payload_match)",
    "keep-ip-options": "malformed: let packets with IP options through",
    "keep-fragments": "malformed: let fragments through",
    "lab": "lab (default: the only lab up)",
}


@task(help=RULE_HELP, auto_shortflags=False)
@user_errors
def add(
    c: Context,
    kind: str,
    name: str | None = None,
    prefix: str | None = None,
    proto: str | None = None,
    src_port: int | None = None,
    dst_port: int | None = None,
    match: str | None = None,
    rate: int | None = None,
    burst: int | None = None,
    vip: str | None = None,
    port: int | None = None,
    count: int | None = None,
    set_name: str | None = None,
    timeout_s: int | None = None,
    block_set: str | None = None,
    block_s: int | None = None,
    offset: int | None = None,
    hex: str | None = None,
    keep_ip_options: bool = False,
    keep_fragments: bool = False,
    lab: str | None = None,
) -> None:
    """Add a rule on every edge at run time (XDP: a map update; L7 kinds: one nftables transaction)."""
    need_root("mitigate add")
    fields = {
        "kind": kind,
        "name": name,
        "prefix": prefix,
        "proto": proto,
        "src_port": src_port,
        "dst_port": dst_port,
        "match": match,
        "rate": rate,
        "burst": burst,
        "vip": vip,
        "port": port,
        "count": count,
        "set_name": set_name,
        "timeout_s": timeout_s,
        "block_set": block_set,
        "block_s": block_s,
        "offset": offset,
        "hex": hex.lower() if hex else hex,
    }
    if kind == "malformed":
        fields |= {"ip_options": not keep_ip_options, "fragments": not keep_fragments}
    rule = control.parse_rule(fields)
    name = runtime.resolve_lab(lab)
    control.add(name, rule)
    console.print(f"added [bold]{rule.label()}[/] on every edge of lab {name}")
    for warning in control.infrastructure_warnings(runtime.running_plan(name), rule):
        console.print(f"[yellow]warning:[/] {warning}")


@task(name="del", help={"name": "the rule's name (see `invoke mitigate list`)", "lab": RULE_HELP["lab"]})
@user_errors
def delete(c: Context, name: str, lab: str | None = None) -> None:
    """Remove a rule from every edge at run time."""
    need_root("mitigate del")
    control.delete(runtime.resolve_lab(lab), name)
    console.print(f"removed [bold]{name}[/] from every edge")


def _rules_table(rule_set: RuleSet) -> Table:
    table = Table(title="mitigation rules (every edge)")
    for column in ("name", "kind", "slot", "parameters"):
        table.add_column(column)
    for slotted in rule_set.rules:
        params = slotted.rule.model_dump(exclude={"name", "kind"}, exclude_none=True, mode="json")
        table.add_row(
            slotted.rule.label(),
            slotted.rule.kind,
            str(slotted.slot),
            " ".join(f"{k}={v}" for k, v in params.items()),
        )
    return table


@task(name="list", help={"lab": RULE_HELP["lab"]})
@user_errors
def list_rules(c: Context, lab: str | None = None) -> None:
    """List the rules in force."""
    out.print(_rules_table(control.rules(runtime.resolve_lab(lab))))


def _stats_table(lab: str) -> Table:
    per_edge = control.stats(lab)
    names = list(per_edge)
    table = Table(title=f"XDP and nftables counters, lab {lab} (packets)")
    table.add_column("rule / verdict")
    for edge in names:
        table.add_column(edge, justify="right")
    table.add_column("total", justify="right")
    first = per_edge[names[0]] if names else {"rules": [], "verdicts": {}}
    for verdict in first["verdicts"]:
        counts = [per_edge[e]["verdicts"][verdict][0] for e in names]
        table.add_row(f"[dim]{verdict}[/]", *map(str, counts), str(sum(counts)))
    for index, rule in enumerate(first["rules"]):
        counts = [per_edge[e]["rules"][index]["packets"] for e in names]
        table.add_row(rule["name"], *map(str, counts), str(sum(counts)))
    for set_name in first.get("blocklists", {}):
        counts = [len(per_edge[e]["blocklists"][set_name]) for e in names]
        table.add_row(f"[dim]sources in blocklist {set_name}[/]", *map(str, counts), str(sum(counts)))
    return table


@task(
    help={"watch": "refresh until Ctrl-C", "interval": "seconds between refreshes", "lab": RULE_HELP["lab"]}
)
@user_errors
def stats(c: Context, watch: bool = False, interval: float = 1.0, lab: str | None = None) -> None:
    """Packets per rule per edge (and XDP's own verdicts), from the XDP maps and the nftables counters."""
    need_root("mitigate stats")
    name = runtime.resolve_lab(lab)
    if not watch:
        out.print(_stats_table(name))
        return
    with Live(_stats_table(name), console=out, refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            live.update(_stats_table(name))


ns = Collection("mitigate", add, delete, list_rules, stats)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
