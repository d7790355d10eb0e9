"""Packet capture on any node's interface with tshark: decoded lines or a pcap file, bounded in packets
and time, the capture process ended on Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import NodePlan

MAX_COUNT = 1_000_000
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class CaptureSpec:
    """What to capture: where, which packets, how many at most, for how long, and into which file."""

    node: str
    iface: str | None = None  # None: the node's uplink (its first interface without one)
    bpf_filter: str | None = None
    count: int = 50
    seconds: float = 30.0
    write: Path | None = None  # a pcap file instead of decoded lines


def parse_target(target: str) -> tuple[str, str | None]:
    """NODE or NODE:IFACE."""
    node, _, iface = target.partition(":")
    return node, iface or None


def _interface(node: NodePlan, iface: str | None) -> str:
    if iface is not None:
        return iface
    if node.uplink:
        return node.uplink
    if node.interfaces:
        return node.interfaces[0].name
    raise EdgesimError(Problem(f"capture {node.name}", "the node has no interface", "name one: NODE:IFACE"))


def argv(spec: CaptureSpec, iface: str) -> list[str]:
    """The tshark command line: numeric, line-buffered, stopping at count packets or after seconds."""
    if not 1 <= spec.count <= MAX_COUNT:
        raise EdgesimError(Problem("--count", f"must be 1..{MAX_COUNT:,}", "captures are bounded"))
    if not 0 < spec.seconds <= MAX_SECONDS:
        raise EdgesimError(Problem("--seconds", f"must be in (0, {MAX_SECONDS:g}]", "captures are bounded"))
    command = ["tshark", "-n", "-l", "-i", iface, "-c", str(spec.count)]
    command += ["-a", f"duration:{spec.seconds:g}"]
    if spec.bpf_filter:
        command += ["-f", spec.bpf_filter]
    if spec.write:
        command += ["-q", "-F", "pcap", "-w", str(spec.write.resolve())]
    return command


def capture(lab: str, spec: CaptureSpec, output: TextIO = sys.stdout) -> int:
    """Run the capture in the node until it stops by itself or Ctrl-C; return tshark's exit code."""
    node = runtime.node_plan(lab, spec.node)
    backend = runtime.backend(lab)
    iface = _interface(node, spec.iface)
    with backend.netlink(node) as ipr:
        if not ipr.link_lookup(ifname=iface):
            names = sorted(link.get("ifname") for link in ipr.get_links())
            raise EdgesimError(
                Problem(f"{spec.node}:{iface}", "no such interface", f"there are: {', '.join(names)}")
            )
    command = argv(spec, iface)
    if spec.write:
        spec.write.resolve().parent.mkdir(parents=True, exist_ok=True)
    process = backend.popen(node, command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.write(line)
            output.flush()
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    if process.returncode != 0:
        assert process.stderr is not None
        errors = [line for line in process.stderr.read().splitlines() if "root" not in line.lower()]
        raise EdgesimError(
            Problem(f"capture on {spec.node}:{iface}", "tshark failed: " + " ".join(errors)[-300:])
        )
    return process.returncode
