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

from edgesim.errors import EdgesimError

TABLE = "edgesim_synproxy"
# Without loose pickup, conntrack does not adopt a mid-stream ACK as an established flow: it stays
# invalid, and synproxy gets to check its cookie.
TCP_LOOSE = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")


def ruleset(protected: list[tuple[IPv4Address, int]], mss: int = 1460) -> str:
    """The nftables script that (re)creates the synproxy table for these VIP:ports, atomically."""
    matches = [f"ip daddr {vip} tcp dport {port}" for vip, port in protected]
    lines = [
        f"table ip {TABLE}",  # create if missing, so the delete below never fails
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "  chain pre {",
        "    type filter hook prerouting priority raw; policy accept;",
        *(f"    {m} tcp flags & (syn | ack) == syn notrack" for m in matches),
        "  }",
        "  chain in {",
        "    type filter hook input priority filter; policy accept;",
        *(f"    {m} ct state invalid,untracked synproxy mss {mss} wscale 0" for m in matches),
        *(f"    {m} ct state invalid drop" for m in matches),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nft(script: str) -> None:
    import nftables  # the distribution's binding, linked into the venv by setup

    nft = nftables.Nftables()
    rc, _, error = nft.cmd(script)
    if rc != 0:
        raise EdgesimError(f"nftables refused the synproxy table: {error.strip()}")


def install(protected: list[tuple[IPv4Address, int]]) -> None:
    """Make this namespace's synproxy table match `protected` (removing it when empty)."""
    if not protected:
        remove()
        return
    TCP_LOOSE.write_text("0")
    _nft(ruleset(protected))


def remove() -> None:
    """Remove the synproxy table from this namespace, if it is there."""
    _nft(f"table ip {TABLE}\ndelete table ip {TABLE}\n")
