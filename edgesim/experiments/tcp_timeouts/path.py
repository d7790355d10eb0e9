"""The path between a client and a server, controlled in the middle node: nftables drops packets on command.

Each pair gets its own table in the router's namespace, matching only the pair's two interfaces, so pairs
running
cases side by side never touch each other's traffic. Dropping (not rejecting) is the point: no ICMP or RST
tells either end anything, exactly as when a peer vanishes or a link dies silently.
"""

from __future__ import annotations

import nftables

from edgesim import namespaces
from edgesim.errors import EdgesimError, Problem


class PathControl:
    """Drop rules for one pair's path through the router; `restore` removes them all."""

    def __init__(self, router_netns: str, table: str, client_if: str = "", server_if: str = "") -> None:
        self.netns = router_netns
        self.table = table
        self.client_if = client_if  # the router's interface towards the client
        self.server_if = server_if
        self.rules: list[str] = []

    def _run(self, commands: str) -> None:
        # The Nftables context opens its netlink socket in the namespace of the thread that creates it.
        with namespaces.inside(self.netns):
            nft = nftables.Nftables()
            rc, _, err = nft.cmd(commands)
        if rc != 0:
            raise EdgesimError(
                Problem(f"nftables in {self.netns}", err.strip() or f"rc {rc}", "is nftables in the kernel?")
            )

    def _add(self, rule: str, label: str) -> None:
        if not self.rules:
            self._run(
                f"add table ip {self.table}; "
                f"add chain ip {self.table} forward {{ type filter hook forward priority 0; policy accept; }}"
            )
        self._run(f"add rule ip {self.table} forward {rule} drop")
        self.rules.append(label)

    def drop_synack(self) -> None:
        """Drop the server's SYN-ACKs (and only those) on their way to the client."""
        self._add(f'iifname "{self.server_if}" tcp flags & (syn | ack) == syn | ack', "server SYN-ACKs")

    def cut(self) -> None:
        """Drop everything between the two ends, both ways: the peer seems to vanish."""
        self._add(f'iifname "{self.client_if}" oifname "{self.server_if}"', "client → server")
        self._add(f'iifname "{self.server_if}" oifname "{self.client_if}"', "server → client")

    def drop_flow(self, address: str, port: int) -> None:
        """Drop one connection both ways, by its client's address and port: that client seems to vanish."""
        self._add(f"ip saddr {address} tcp sport {port}", f"from {address}:{port}")
        self._add(f"ip daddr {address} tcp dport {port}", f"to {address}:{port}")

    def restore(self) -> None:
        """Remove the pair's table: the path forwards everything again."""
        if self.rules:
            self._run(f"delete table ip {self.table}")
            self.rules = []
