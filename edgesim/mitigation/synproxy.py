"""The stack side of XDP SYN cookies: nftables' synproxy completes the handshakes that XDP validated.

XDP answers a protected VIP:port's SYNs with cookies and passes only ACKs that carry a valid one. Such an
ACK reaches the stack with no connection behind it; synproxy (conntrack state invalid/untracked) checks the
cookie again, opens the connection to the local server and splices the two, as in the kernel's
xdp_synproxy selftest. SYNs that reach the stack anyway (generic-mode gaps) are untracked and answered by
synproxy itself, so they create no state either.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from edgesim import nft
from edgesim.errors import Problem

TABLE = "edgesim_synproxy"
# Without loose pickup, conntrack does not adopt a mid-stream ACK as an established flow: it stays
# invalid, and synproxy gets to check its cookie.
TCP_LOOSE = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")


def ruleset(protected: list[tuple[IPv4Address, int]], mss: int = 1460) -> list[nft.Command]:
    """The nft JSON commands that (re)create the synproxy table for these VIP:ports, atomically."""
    matches = [
        [nft.match(nft.payload("ip", "daddr"), str(vip)), nft.match(nft.payload("tcp", "dport"), port)]
        for vip, port in protected
    ]
    state = {"ct": {"key": "state"}}
    body = [
        nft.base_chain("pre", "prerouting", "raw", "accept"),
        nft.base_chain("in", "input", "filter", "accept"),
        *(nft.rule("pre", *m, nft.tcp_flags(["syn", "ack"], "syn"), {"notrack": None}) for m in matches),
        *(
            nft.rule(
                "in",
                *m,
                nft.match(state, ["invalid", "untracked"], "in"),
                {"synproxy": {"mss": mss, "wscale": 0}},
            )
            for m in matches
        ),
        *(nft.rule("in", *m, nft.match(state, "invalid", "in"), nft.verdict("drop")) for m in matches),
    ]
    return nft.replace_table(TABLE, body)


def _nft(commands: list[nft.Command]) -> None:
    nft.json_cmd(
        None, commands, lambda error: Problem("edgesim", f"nftables refused the synproxy table: {error}")
    )


def install(protected: list[tuple[IPv4Address, int]]) -> None:
    """Make this namespace's synproxy table match `protected` (removing it when empty)."""
    if not protected:
        remove()
        return
    TCP_LOOSE.write_text("0")
    _nft(ruleset(protected))


def remove() -> None:
    """Remove the synproxy table from this namespace, if it is there."""
    _nft(nft.delete_table(TABLE))
