"""The path between a client and a server, controlled in the middle node: nftables drops packets on command.

Each pair gets its own table in the router's namespace, matching only the pair's two interfaces, so pairs
running cases side by side never touch each other's traffic. Dropping (not rejecting) is the point: no ICMP
or RST tells either end anything, exactly as when a peer vanishes or a link dies silently.
"""

from __future__ import annotations

from edgesim import nft
from edgesim.errors import Problem


class PathControl:
    """Drop rules for one pair's path through the router; `restore` removes them all."""

    def __init__(self, router_netns: str, table: str, client_if: str = "", server_if: str = "") -> None:
        self.netns = router_netns
        self.table = table
        self.client_if = client_if  # the router's interface towards the client
        self.server_if = server_if
        self.rules: list[str] = []

    def _run(self, commands: list[nft.Command]) -> None:
        nft.json_cmd(
            self.netns,
            commands,
            lambda error: Problem(f"nftables in {self.netns}", error, "is nftables in the kernel?"),
        )

    def _add(self, match: list[nft.Expr], label: str) -> None:
        rule = nft.rule("forward", *match, nft.verdict("drop"))
        if self.rules:
            self._run(nft.add(self.table, [rule]))
        else:  # the pair's first drop: its table and chain too
            chain = nft.base_chain("forward", "forward", "filter", "accept")
            self._run(
                [
                    {"add": {"table": {"family": "ip", "name": self.table}}},
                    *nft.add(self.table, [chain, rule]),
                ]
            )
        self.rules.append(label)

    def drop_synack(self) -> None:
        """Drop the server's SYN-ACKs (and only those) on their way to the client."""
        self._add([_iif(self.server_if), nft.tcp_flags(["syn", "ack"], ["syn", "ack"])], "server SYN-ACKs")

    def cut(self) -> None:
        """Drop everything between the two ends, both ways: the peer seems to vanish."""
        self._add([_iif(self.client_if), _oif(self.server_if)], "client → server")
        self._add([_iif(self.server_if), _oif(self.client_if)], "server → client")

    def drop_flow(self, address: str, port: int) -> None:
        """Drop one connection both ways, by its client's address and port: that client seems to vanish."""
        self._add(_endpoint("saddr", "sport", address, port), f"from {address}:{port}")
        self._add(_endpoint("daddr", "dport", address, port), f"to {address}:{port}")

    def restore(self) -> None:
        """Remove the pair's table: the path forwards everything again."""
        if self.rules:
            self._run([{"delete": {"table": {"family": "ip", "name": self.table}}}])
            self.rules = []


def _iif(name: str) -> nft.Expr:
    return nft.match({"meta": {"key": "iifname"}}, name)


def _oif(name: str) -> nft.Expr:
    return nft.match({"meta": {"key": "oifname"}}, name)


def _endpoint(addr: str, port_field: str, address: str, port: int) -> list[nft.Expr]:
    return [nft.match(nft.payload("ip", addr), address), nft.match(nft.payload("tcp", port_field), port)]
