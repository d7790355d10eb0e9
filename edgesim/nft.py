"""nftables through its JSON API: `{"nftables": [...]}` commands run inside a namespace, refusals as errors.

A ruleset here is one table, replaced whole in one transaction (add it so that the delete cannot fail, delete
it, add it again with its content): readers never see half a table, and nothing else in the namespace is
touched. Builders of expressions keep the JSON readable where rulesets are written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from edgesim.errors import EdgesimError, Problem

# The builders are the pure half (tenants.rules uses them in the model layer); they are part of this face.
from edgesim.nftexpr import (
    PRIORITY,
    Command,
    Expr,
    add,
    address,
    base_chain,
    clamp_mss_to_route,
    counter,
    delete_table,
    list_table,
    match,
    payload,
    replace_table,
    rule,
    set_mark,
    tcp_flags,
    verdict,
)

__all__ = [
    "PRIORITY",
    "Command",
    "Expr",
    "add",
    "address",
    "base_chain",
    "clamp_mss_to_route",
    "counter",
    "delete_table",
    "json_cmd",
    "list_table",
    "match",
    "payload",
    "replace_table",
    "rule",
    "set_mark",
    "tcp_flags",
    "try_json_cmd",
    "verdict",
]


def json_cmd(
    netns: str | None, commands: list[Command], refused: Callable[[str], Problem], dry_run: bool = False
) -> list[dict[str, Any]]:
    """Run `commands` in one transaction in `netns` (None: this one); raise the caller's Problem if refused.

    Returns nft's output objects (listings). `dry_run`: the kernel checks the commands, applies nothing.
    """
    found = try_json_cmd(netns, commands, dry_run)
    if isinstance(found, str):
        raise EdgesimError(refused(found))
    return found


def try_json_cmd(
    netns: str | None, commands: list[Command], dry_run: bool = False
) -> list[dict[str, Any]] | str:
    """Like json_cmd, but a refusal comes back as nft's error text (e.g. listing a missing table)."""
    # Imported here: importing this module needs neither the binding nor a namespace.
    import nftables  # the distribution's binding, linked into the venv by setup

    from edgesim import namespaces

    # The context opens its netlink socket when created: create and use it inside the namespace.
    with namespaces.inside(netns) if netns else contextlib.nullcontext():
        nft = nftables.Nftables()
        nft.set_dry_run(dry_run)
        rc, output, error = nft.json_cmd({"nftables": commands})
    if rc != 0:
        return error.strip() or f"rc {rc}"
    return output.get("nftables", []) if isinstance(output, dict) else []
