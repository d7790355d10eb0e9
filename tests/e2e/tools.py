"""Helpers of the tenant tests: packet captures in a namespace, agent counters, FTP, edge failure."""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.backends import get_backend
from edgesim.nodes import role_for
from edgesim.plan import LabPlan
from edgesim.tenants import admin


@contextlib.contextmanager
def capture(netns: str, ifname: str, path: Path, bpf_filter: str = "", snaplen: int = 256) -> Iterator[Path]:
    """tcpdump on ifname inside netns into path while the block runs (complete once the block is over)."""
    # Immediate mode: without it packets wait in the kernel ring for up to a second, and stopping loses them.
    argv = ["tcpdump", "-i", ifname, "--immediate-mode", "-U", "-n", "-s", str(snaplen), "-w", str(path)]
    argv += bpf_filter.split()
    proc = namespaces.popen_in(netns, argv, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        # "listening on ...": only from then on does it see packets (a note may come first).
        lines = [proc.stderr.readline() for _ in range(2)] if "any" == ifname else [proc.stderr.readline()]
        assert "listening on" in lines[-1], f"tcpdump in {netns} did not start: {lines}"
        yield path
        time.sleep(0.3)  # let the last packets reach the file
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def read_pcap(path: Path) -> list:
    """The packets of a capture, with scapy."""
    from scapy.all import rdpcap

    return list(rdpcap(str(path)))


def firewall_counters(lab: str) -> dict[str, dict[str, dict[str, int]]]:
    """edge -> tenant -> named firewall counter -> packets, as the agents report them."""
    return {edge: status["firewall"] for edge, status in admin.agent_status(lab).items()}


def gre_counters(lab: str) -> dict[str, dict[str, dict[str, int]]]:
    """edge -> tenant -> GRE verdict -> packets, as the agents report them."""
    report = admin.agent_status(lab)
    return {
        edge: {tenant: {v: pair[0] for v, pair in verdicts.items()} for tenant, verdicts in s["gre"].items()}
        for edge, s in report.items()
    }


def delta(after: dict, before: dict, tenant: str, counter: str) -> dict[str, int]:
    """Per edge, how much a tenant's counter grew between two readings."""
    grown = {}
    for edge, tenants in after.items():
        old = before.get(edge, {}).get(tenant, {}).get(counter, 0)
        grown[edge] = tenants.get(tenant, {}).get(counter, 0) - old
    return grown


def ftp_retrieve(netns: str, host: str, filename: str) -> tuple[bytes, tuple[str, int]]:
    """Fetch a file over FTP in active mode from inside netns; the data and the data connection's peer."""
    with namespaces.inside(netns):
        ftp = ftplib.FTP()
        ftp.connect(host, 21, timeout=10)
        try:
            ftp.login()
            ftp.set_pasv(False)  # active: the server connects back, from its port 20
            ftp.voidcmd("TYPE I")  # binary: the bytes as they are on the server
            with ftp.transfercmd(f"RETR {filename}") as conn:
                peer = conn.getpeername()
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
            ftp.voidresp()
        finally:
            ftp.close()
    return b"".join(chunks), peer


def sha256(data: bytes) -> str:
    """Hex digest, for short assertion messages."""
    return hashlib.sha256(data).hexdigest()


def tcp_connects(netns: str, host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to host:port from inside netns is accepted within timeout."""
    with namespaces.inside(netns):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        except OSError:
            return False


def _router_routes_through(plan: LabPlan) -> tuple[str, list[tuple[str, list[dict]]]]:
    (router,) = plan.nodes_with_role("router")
    routes = []
    with IPRoute(netns=router.netns) as ipr:
        for route in ipr.get_routes(family=socket.AF_INET):
            hops = route.get("RTA_MULTIPATH")
            if hops:
                dst = f"{route.get('RTA_DST')}/{route['dst_len']}"
                routes.append((dst, [{"gateway": h.get("RTA_GATEWAY"), "oif": h["oif"]} for h in hops]))
    return router.netns, routes


def fail_edge(plan: LabPlan, edge: str) -> None:
    """An edge dies: its links go down (its tenants' too). With BGP the router finds out by itself (BFD);
    with static routing the edge is taken out of the router's ECMP routes here."""
    if plan.routing == "static":
        gateway = plan.nodes["router"].interface_to(edge).peer_address
        netns, routes = _router_routes_through(plan)
        with IPRoute(netns=netns) as ipr:
            for dst, hops in routes:
                ipr.route("replace", dst=dst, multipath=[h for h in hops if h["gateway"] != gateway])
    node = plan.nodes[edge]
    with IPRoute(netns=node.netns) as ipr:
        for link in ipr.get_links():
            if link.get("ifname") not in ("lo", "eth-mgmt"):
                ipr.link("set", index=link["index"], state="down")


def restore_edge(plan: LabPlan, edge: str) -> None:
    """Undo fail_edge: links up and the edge's routes; with static routing, back in the ECMP routes."""
    node = plan.nodes[edge]
    with IPRoute(netns=node.netns) as ipr:
        for link in ipr.get_links():
            ipr.link("set", index=link["index"], state="up")
    role_for(plan, node, get_backend("netns")).configure()
    if plan.routing != "static":
        return
    router = plan.nodes["router"]
    gateway = router.interface_to(edge).peer_address
    netns, routes = _router_routes_through(plan)
    with IPRoute(netns=netns) as ipr:
        index = ipr.link_lookup(ifname=router.interface_to(edge).name)[0]
        for dst, hops in routes:
            if all(h["gateway"] != gateway for h in hops):
                ipr.route("replace", dst=dst, multipath=[*hops, {"gateway": gateway, "oif": index}])
