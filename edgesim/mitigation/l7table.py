"""The edge's layer-7 table in nftables: brought to the lab's rule set by diff, its counters and sets read.

Runs in the edge's namespace (the XDP agent's), like the synproxy table. The pure half is
edgesim.mitigation.nftrules.
"""

from __future__ import annotations

from typing import Any

from edgesim import nft
from edgesim.errors import Problem
from edgesim.mitigation import nftrules
from edgesim.mitigation.rules import RuleSet


def _refused(error: str) -> Problem:
    return Problem("mitigation", f"nftables refused the L7 rules: {error}", "see the edge's xdp agent log")


def listing() -> list[dict[str, Any]]:
    """The table's objects as nft lists them (empty when there is no table)."""
    found = nft.try_json_cmd(None, nft.list_table(nftrules.TABLE))
    return [] if isinstance(found, str) else found


def _present(objects: list[dict[str, Any]]) -> nftrules.Present:
    rules: dict[str, tuple[str, int]] = {}
    sets: set[str] = set()
    counters: set[str] = set()
    for item in objects:
        if "rule" in item and str(item["rule"].get("comment", "")).startswith(nftrules.COMMENT):
            rules[item["rule"]["comment"]] = (item["rule"]["chain"], item["rule"]["handle"])
        elif "set" in item:
            sets.add(item["set"]["name"])
        elif "counter" in item:
            counters.add(item["counter"]["name"])
    return nftrules.Present(rules, sets, counters)


def apply(rule_set: RuleSet) -> int:
    """Bring the table to the rule set's L7 rules in one transaction; the number of commands it took.

    The table and its chains are made when missing (and the table removed when no L7 rule is left).
    """
    wanted = [nftrules.objects_for(r) for r in nftrules.l7_rules(rule_set)]
    objects = listing()
    if not wanted:
        if objects:
            nft.json_cmd(None, nft.delete_table(nftrules.TABLE), _refused)
        return 0
    commands: list[nft.Command] = []
    if not objects:
        commands += [{"add": {"table": {"family": "ip", "name": nftrules.TABLE}}}]
        commands += nft.add(nftrules.TABLE, nftrules.skeleton())
    commands += nftrules.diff(_present(objects), wanted)
    if commands:
        nft.json_cmd(None, commands, _refused)
    return len(commands)


def counters() -> dict[str, tuple[int, int]]:
    """(packets, bytes) of every named counter of the table."""
    return {
        item["counter"]["name"]: (item["counter"]["packets"], item["counter"]["bytes"])
        for item in listing()
        if "counter" in item
    }


def members(set_name: str) -> list[dict[str, Any]]:
    """A blocklist's sources now: address and seconds left (None: no timeout)."""
    found = nft.try_json_cmd(
        None, [{"list": {"set": {"family": "ip", "table": nftrules.TABLE, "name": set_name}}}]
    )
    if isinstance(found, str):
        return []
    out = []
    for item in found:
        for elem in item.get("set", {}).get("elem", []):
            if isinstance(elem, dict) and "elem" in elem:
                out.append({"address": str(elem["elem"]["val"]), "expires_s": elem["elem"].get("expires")})
            else:
                out.append({"address": str(elem), "expires_s": None})
    return out


def remove() -> None:
    """Remove the table from this namespace, if it is there."""
    nft.json_cmd(None, nft.delete_table(nftrules.TABLE), _refused)
