"""Volumetric attacks from the `attacker` node, always bounded in packets and seconds.

Floods are sent by netsniff-ng's trafgen (the fastest sender here: it writes frames through a packet
mmap ring from every CPU) from a configuration rendered per attack: dynamic fields (random spoofed
sources in 100.64.0.0/10, random ports and sequence numbers) are evaluated by trafgen for each packet.
The malformed-packet mix is crafted with scapy and handed to trafgen as a list of static frames.
The achieved rate is measured from the attacker interface's transmit counter, not taken from trafgen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim import runtime
from edgesim.backends.base import Backend
from edgesim.errors import EdgesimError, Problem
from edgesim.paths import lab_dir
from edgesim.plan import LabPlan, NodePlan
from edgesim.traffic.targets import check_target
from edgesim.waiting import wait_until

ATTACKER = "attacker"
# A flood never runs longer than this, nor sends more than this, whatever is asked.
MAX_SECONDS = 120
MAX_PACKETS = 50_000_000
# How often a flood is resumed after trafgen gave up on a full transmit ring (see _ring_was_full).
MAX_RELAUNCHES = 20


@dataclass(frozen=True)
class Target:
    """Where the packets go: the VIP, and the router's MAC on the attacker's link."""

    vip: IPv4Address
    router_mac: str
    own_address: IPv4Address


def _mac(mac: str) -> str:
    return mac.lower()


def _ip_bytes(address: IPv4Address) -> str:
    return ", ".join(str(b) for b in address.packed)


def _eth(target: Target) -> str:
    return f"eth(da={_mac(target.router_mac)}, type=0x0800)"


def _ip_header(target: Target, proto: int, length: int, source: str) -> str:
    # version/IHL, TOS, total length, random ID, DF, TTL, protocol, checksum over bytes 14..33.
    return (
        f"0x45, 0x00, const16({length}), drnd(2), 0x40, 0x00, 64, {proto}, csumip(14, 33),\n"
        f"  {source}, {_ip_bytes(target.vip)}"
    )


# Random sources inside 100.64.0.0/10: second byte 64-127, the rest random.
SPOOFED = "100, dinc(64, 127), drnd(2)"


def syn_flood(target: Target) -> str:
    """SYNs to VIP:80 from random spoofed sources, random source ports and sequence numbers."""
    return (
        "{\n  " + _eth(target) + ",\n  " + _ip_header(target, 6, 40, SPOOFED) + ",\n"
        "  drnd(2), const16(80), drnd(4), const32(0), 0x50, 0x02, const16(64240),\n"
        "  csumtcp(14, 34), const16(0)\n}\n"
    )


def _udp(target: Target, source: str, sport: str, payload: int) -> str:
    length = 8 + payload
    body = ", ".join(["0x41"] * payload)
    return (
        "{\n  " + _eth(target) + ",\n  " + _ip_header(target, 17, 20 + length, source) + ",\n"
        f"  {sport}, drnd(2), const16({length}), csumudp(14, 34),\n  {body}\n}}\n"
    )


def udp_reflection(target: Target) -> str:
    """DNS and NTP 'answers' (source ports 53 and 123) from random spoofed sources: a reflection flood."""
    return _udp(target, SPOOFED, "const16(53)", 64) + _udp(target, SPOOFED, "const16(123)", 64)


def udp_flood(target: Target) -> str:
    """UDP to random ports of the VIP from the attacker's own address."""
    return _udp(target, _ip_bytes(target.own_address), "drnd(2)", 64)


# What the DNS floods ask: a name of the default lab's zone (any query costs the server about the same).
FLOOD_QNAME = "www.pop.example"
# The few sources of the spread DNS flood: 100.127.53.1-16. A per-source limit upstream holds each of them
# to its rate, and together they are still far over what a DNS server answers.
FEW_SOURCES = "100, 127, 53, dinc(1, 16)"


def _dns_query(target: Target, source: str) -> str:
    # A recursion-desired query for FLOOD_QNAME with a random ID, from random ports to port 53.
    question = raw(DNS(rd=1, qd=DNSQR(qname=FLOOD_QNAME)))[2:]
    length = 8 + 2 + len(question)
    body = ", ".join(f"0x{b:02x}" for b in question)
    return (
        "{\n  " + _eth(target) + ",\n  " + _ip_header(target, 17, 20 + length, source) + ",\n"
        f"  drnd(2), const16(53), const16({length}), csumudp(14, 34),\n  drnd(2), {body}\n}}\n"
    )


def dns_flood(target: Target) -> str:
    """DNS queries to VIP:53 from the attacker's own address (one source), random source ports."""
    return _dns_query(target, _ip_bytes(target.own_address))


def dns_flood_sources(target: Target) -> str:
    """DNS queries to VIP:53 from 16 spoofed sources in turn (a few sources), random source ports."""
    return _dns_query(target, FEW_SOURCES)


def icmp_flood(target: Target) -> str:
    """ICMP echo requests to the VIP from the attacker's own address (a ping flood)."""
    return (
        "{\n  "
        + _eth(target)
        + ",\n  "
        + _ip_header(target, 1, 20 + 8 + 56, _ip_bytes(target.own_address))
        + ",\n"
        # type, code, checksum over the 64 ICMP bytes (34..97), random id, a counting sequence number
        "  0x08, 0x00, csumicmp(34, 97), drnd(2), 0x00, dinc(0, 255),\n  "
        + ", ".join(["0x61"] * 56)
        + "\n}\n"
    )


def malformed_packets(target: Target) -> list[bytes]:
    """Broken and suspicious frames that a router still forwards, built with scapy.

    Broken IPv4 headers (IHL below 5, a total length past the frame) are left out: the router's own
    stack drops them before they reach an edge, so they would not measure the edges (tests/bpf covers
    them, packet by packet).
    """
    eth = Ether(dst=target.router_mac)
    src, dst = str(target.own_address), str(target.vip)
    return [
        raw(eth / IP(src=src, dst=dst, proto=6) / Raw(b"\x00" * 10)),  # TCP header cut short
        raw(eth / IP(src=src, dst=dst) / TCP(dport=443, dataofs=15)),  # TCP data offset past the end
        raw(eth / IP(src=src, dst=dst, options=[b"\x01\x01\x01\x00"]) / TCP(dport=443)),  # IP options
        raw(
            eth / IP(src=src, dst=dst, flags="MF") / UDP(sport=40000, dport=9) / Raw(b"x" * 32)
        ),  # 1st fragment
        raw(eth / IP(src=src, dst=dst, frag=100, proto=17) / Raw(b"x" * 32)),  # later fragment
        raw(eth / IP(src=src, dst=dst, proto=1) / Raw(b"\x08\x00")),  # ICMP header cut short
        _udp_length_lies(eth / IP(src=src, dst=dst) / UDP(sport=40000, dport=9) / Raw(b"x" * 16)),
    ]


def _udp_length_lies(packet: Ether) -> bytes:
    """A UDP datagram whose length field claims more than the IP packet carries."""
    frame = raw(packet)
    return frame[:38] + (1000).to_bytes(2, "big") + frame[40:]


def _spoofed_frame(frame: bytes) -> str:
    """A frame as trafgen bytes, with a random spoofed source and the IP checksum computed per packet.

    Spoofed sources keep per-source rate limits out of the picture: only the malformed rule stops these.
    (Their TCP/UDP checksums no longer match; a stack that gets them counts them as checksum errors.)
    """
    header_end = 14 + (frame[14] & 0x0F) * 4 - 1
    words = [f"0x{b:02x}" for b in frame]
    words[24:26] = [f"csumip(14, {header_end})"]
    # After the 2-byte checksum became one token, the source address starts at index 25.
    words[25:29] = [SPOOFED]
    return "{ " + ", ".join(words) + " }\n"


def malformed_mix(target: Target) -> str:
    """The malformed frames as trafgen packets (trafgen cycles through them)."""
    return "".join(_spoofed_frame(frame) for frame in malformed_packets(target))


ATTACKS: dict[str, Callable[[Target], str]] = {
    "syn-flood": syn_flood,
    "udp-reflection": udp_reflection,
    "udp-flood": udp_flood,
    "icmp-flood": icmp_flood,
    "dns-flood": dns_flood,
    "dns-flood-sources": dns_flood_sources,
    "malformed": malformed_mix,
}


@dataclass(frozen=True)
class AttackReport:
    """What an attack sent, measured on the attacker's interface."""

    kind: str
    packets: int
    seconds: float
    started: float  # time.time() at start, to line attacks up with other traffic
    ended: float

    @property
    def pps(self) -> float:
        """Achieved packets per second."""
        return self.packets / self.seconds if self.seconds else 0.0


def target_of(plan: LabPlan, vip: str | None = None) -> Target:
    """The attack target in a running lab: its first VIP unless told, through the attacker's uplink.

    The target must be the lab's own (a VIP, a tenant prefix, a lab node): never an address outside it.
    """
    address = check_target(plan, plan.vips[0] if vip is None else vip, "--vip")
    node = plan.nodes.get(ATTACKER)
    if node is None or node.uplink is None:
        raise EdgesimError(
            Problem("nodes", f"lab {plan.lab} has no '{ATTACKER}' host", "add one to the topology")
        )
    uplink = next(i for i in node.interfaces if i.name == node.uplink)
    with runtime.backend(plan.lab).netlink(plan.nodes[uplink.peer_node]) as ipr:
        (link,) = ipr.get_links(ipr.link_lookup(ifname=uplink.peer_ifname)[0])
        mac = link.get("IFLA_ADDRESS")
    return Target(address, mac, IPv4Address(uplink.address.split("/")[0]))


def _tx_packets(backend: Backend, node: NodePlan, ifname: str) -> int:
    with backend.netlink(node) as ipr:
        (link,) = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])
        return link.get("IFLA_STATS64")["tx_packets"]


def check_arguments(kind: str, pps: int, seconds: float) -> None:
    """Refuse an unknown attack, a duration outside 0-MAX_SECONDS or a negative rate (before any packet)."""
    if kind not in ATTACKS:
        raise EdgesimError(Problem("kind", f"unknown attack {kind!r}", f"one of {', '.join(ATTACKS)}"))
    if not 0 < seconds <= MAX_SECONDS:  # also false for NaN
        raise EdgesimError(Problem("--seconds", f"{seconds} is out of range", f"up to {MAX_SECONDS} seconds"))
    if pps < 0:
        raise EdgesimError(Problem("--pps", "must be 0 (as fast as possible) or more", "e.g. --pps 100000"))


def launch(
    plan: LabPlan,
    kind: str,
    pps: int,
    seconds: float,
    vip: str | None = None,
    stop: threading.Event | None = None,
) -> AttackReport:
    """Run one attack from the attacker node and wait for it; pps 0 means as fast as trafgen goes.

    It ends after `seconds`, after pps x seconds packets, or as soon as `stop` is set, whichever is first.
    """
    check_arguments(kind, pps, seconds)
    target = target_of(plan, vip)  # refuses a target outside the lab before anything is sent
    node = plan.nodes[ATTACKER]
    assert node.uplink is not None
    return _send(plan, node, node.uplink, kind, ATTACKS[kind](target), pps, seconds, stop)


def inject(
    plan: LabPlan, node: str, ifname: str, dst_mac: str, kind: str, pps: int, seconds: float
) -> AttackReport:
    """One attack's frames sent straight out of `ifname` of `node` to `dst_mac`, bounded like `launch`.

    For benchmarks that measure one receiver alone (e.g. an edge, fed from a veth of their own in the
    router's namespace, so that no router forwarding is in the figure). The target is the lab's first VIP.
    """
    check_arguments(kind, pps, seconds)
    target = target_of(plan)
    direct = Target(target.vip, dst_mac, target.own_address)
    return _send(plan, plan.nodes[node], ifname, kind, ATTACKS[kind](direct), pps, seconds, None)


def _send(
    plan: LabPlan,
    node: NodePlan,
    ifname: str,
    kind: str,
    config_text: str,
    pps: int,
    seconds: float,
    stop: threading.Event | None,
) -> AttackReport:
    """trafgen with this configuration out of `ifname` of `node`, for at most `seconds` and pps x seconds
    packets (MAX_PACKETS at most); the packets sent are the interface's transmit counter."""
    config = lab_dir(plan.lab) / f"attack-{kind}-{node.name}.cfg"
    config.write_text(config_text)
    count = min(MAX_PACKETS, int(pps * seconds) if pps else MAX_PACKETS)
    backend = runtime.backend(plan.lab)
    before = _tx_packets(backend, node, ifname)
    started = time.time()
    try:
        for _ in range(MAX_RELAUNCHES + 1):
            left_s = seconds - (time.time() - started)
            left = count - (_tx_packets(backend, node, ifname) - before)
            if left_s <= 0 or left <= 0 or (stop is not None and stop.is_set()):
                break
            returncode, error = _run_trafgen(backend, node, _argv(ifname, config, left, pps), left_s, stop)
            if returncode in (0, -signal.SIGINT, -signal.SIGKILL, 130):
                break
            if not _ring_was_full(returncode, error):
                raise EdgesimError(Problem("trafgen", f"failed with {returncode}: {error[-300:]}"))
        else:
            raise EdgesimError(
                Problem("trafgen", f"its transmit ring stayed full through {MAX_RELAUNCHES} relaunches")
            )
    finally:
        config.unlink(missing_ok=True)
    ended = time.time()
    sent = _tx_packets(backend, node, ifname) - before
    return AttackReport(kind, sent, ended - started, started, ended)


def _argv(ifname: str, config: Path, count: int, pps: int) -> list[str]:
    argv = ["trafgen", "--dev", ifname, "--conf", str(config), "--num", str(count)]
    argv += ["--no-sock-mem", "--no-cpu-stats"]
    return argv + (["--rate", f"{pps}pps"] if pps else [])


def _ring_was_full(returncode: int, error: str) -> bool:
    # trafgen's fast path flushes its ring with MSG_DONTWAIT and gives up on EAGAIN, which the kernel
    # answers when the socket's send buffer is full of frames a slower receiver has not taken yet (seen on
    # Debian's 6.1 under QEMU's emulation, where the router's veth NAPI lags). The flood is then resumed.
    return returncode == 1 and "Flushing TX_RING failed: Resource temporarily unavailable" in error


def _run_trafgen(
    backend: Backend, node: NodePlan, argv: list[str], seconds: float, stop: threading.Event | None
) -> tuple[int, str]:
    """One trafgen run, stopped with SIGINT (as trafgen expects) after `seconds` or once `stop` is set."""
    errors = tempfile.TemporaryFile()
    # Its own process group: trafgen forks a sender per CPU, and all of them must stop together.
    process = backend.popen(node, argv, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    try:
        wait_until(
            lambda: process.poll() is not None or (stop is not None and stop.is_set()),
            timeout=seconds,
            interval=0.05,
        )
    finally:
        # Out of time, stopped, or the parent exited first: every sender of the group stops now.
        _stop_group(process)
    with errors:
        errors.seek(0)
        return process.returncode, errors.read().decode(errors="replace").strip()


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
