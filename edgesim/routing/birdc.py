"""Talk to one node's BIRD over its own control socket with `birdc`, and read what it says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgesim.errors import EdgesimError, Problem
from edgesim.plan import NodePlan

BIRDC_TIMEOUT_S = 5.0
# birdc lives in sbin, which a user's PATH may lack.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# `show protocols all`: a protocol's row starts at column 0 (name, protocol, table, state, since, info).
_ROW = re.compile(r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>\S+)\s+(?P<rest>.*)$")
_ROUTES = re.compile(r"(?P<count>\d+) (?P<what>imported|exported|preferred)")


@dataclass
class Protocol:
    """One BIRD protocol as `show protocols all` describes it."""

    name: str
    proto: str
    state: str  # up, down, start, ...
    since: str  # when the state last changed (BIRD's time format)
    info: str  # BGP: Established, Active, Connect, Idle, ...
    details: dict[str, str] = field(default_factory=dict)

    @property
    def bgp_state(self) -> str:
        """The BGP state (Established, Active, ...), or the protocol state for other protocols."""
        return self.details.get("BGP state", self.state)

    def routes(self, what: str) -> int:
        """How many routes the protocol's channel has `what` (imported, exported, preferred)."""
        for match in _ROUTES.finditer(self.details.get("Routes", "")):
            if match["what"] == what:
                return int(match["count"])
        return 0


@dataclass
class BfdSession:
    """One BFD session as `show bfd sessions` lists it."""

    address: str
    interface: str
    state: str  # Up, Down, Init, AdminDown


def socket_path(state_dir: Path, node: NodePlan) -> Path:
    """The control socket of the node's BIRD."""
    if node.bgp is None:
        raise EdgesimError(Problem(f"node {node.name}", "runs no BIRD", "the lab uses `routing: static`"))
    return state_dir / node.bgp.socket


def run(state_dir: Path, node: NodePlan, *command: str) -> str:
    """Run one birdc command against the node's BIRD and return its output; a clear error if it fails."""
    sock = socket_path(state_dir, node)
    birdc = shutil.which("birdc", path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))
    if birdc is None:
        raise EdgesimError(Problem("birdc", "not found (package bird2)", "run `invoke setup`"))
    if not sock.exists():
        raise EdgesimError(
            Problem(
                f"nodes.{node.name}",
                f"BIRD is not running (no control socket {sock})",
                "see `invoke status` and the node's bird log in the lab's logs/",
            )
        )
    try:
        result = subprocess.run(
            [birdc, "-s", str(sock), *command],
            capture_output=True,
            text=True,
            timeout=BIRDC_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EdgesimError(
            Problem(f"nodes.{node.name}", f"BIRD did not answer `{' '.join(command)}` in time")
        ) from None
    output = result.stdout + result.stderr
    if result.returncode or "Unable to connect" in output:
        raise EdgesimError(
            Problem(f"nodes.{node.name}", f"birdc {' '.join(command)} failed: {output.strip()[-300:]}")
        )
    return output


def configure(state_dir: Path, node: NodePlan) -> None:
    """Make the node's BIRD re-read its configuration (and the include files), keeping its sessions up."""
    output = run(state_dir, node, "configure")
    # "Reconfigured", or "... in progress" while protocols it stops (a drained edge's) are shutting down.
    if "Reconfigured" not in output and "in progress" not in output:
        raise EdgesimError(
            Problem(f"nodes.{node.name}", f"BIRD refused its new configuration: {output.strip()[-300:]}")
        )


def protocols(state_dir: Path, node: NodePlan) -> dict[str, Protocol]:
    """Every protocol of the node's BIRD, by name, with its details."""
    found: dict[str, Protocol] = {}
    current: Protocol | None = None
    for line in run(state_dir, node, "show", "protocols", "all").splitlines():
        if not line.strip() or line.startswith(("BIRD ", "Name ")):
            continue
        if not line[0].isspace():
            row = _ROW.match(line)
            if row is None:
                current = None
                continue
            rest = row["rest"].split()
            # The info column is whatever follows the time (BGP: "Established", or "Active  Socket: ...").
            since, info = (rest[0], " ".join(rest[1:])) if rest else ("", "")
            current = Protocol(row["name"], row["proto"], row["state"], since, info)
            found[current.name] = current
        elif current is not None and ":" in line:
            key, _, value = line.strip().partition(":")
            current.details.setdefault(key.strip(), value.strip())
    return found


def bfd_sessions(state_dir: Path, node: NodePlan) -> list[BfdSession]:
    """The node's BFD sessions."""
    sessions = []
    for line in run(state_dir, node, "show", "bfd", "sessions").splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", parts[0]):
            sessions.append(BfdSession(parts[0], parts[1], parts[2]))
    return sessions
