"""Where one case runs: a client/server pair of lab hosts, the path between them, what is recorded."""

from __future__ import annotations

import errno as errno_module
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgesim import namespaces
from edgesim.experiments.tcp_timeouts import kernel
from edgesim.experiments.tcp_timeouts.capture import Capture
from edgesim.experiments.tcp_timeouts.path import PathControl
from edgesim.experiments.tcp_timeouts.records import AppEvent
from edgesim.experiments.tcp_timeouts.sampler import Sampler, SocketState
from edgesim.plan import LabPlan, NodePlan
from edgesim.waiting import wait_until

POLL_S = 0.005


@dataclass(frozen=True)
class Pair:
    """Two hosts of the TCP lab (cN talks to sN) and the router between them."""

    name: str
    client: NodePlan
    server: NodePlan
    router: NodePlan

    @property
    def client_address(self) -> str:
        """The client's address."""
        return self.client.interfaces[0].address.split("/")[0]

    @property
    def server_address(self) -> str:
        """The server's address."""
        return self.server.interfaces[0].address.split("/")[0]


def pairs_of(plan: LabPlan) -> list[Pair]:
    """Every cN/sN host pair of a lab, in order."""
    (router,) = plan.nodes_with_role("router")
    pairs = []
    for node in plan.nodes_with_role("host"):
        if node.name.startswith("c") and node.name[1:].isdigit():
            server = plan.nodes.get(f"s{node.name[1:]}")
            if server is not None:
                pairs.append(Pair(node.name[1:], node, server, router))
    return pairs


@dataclass
class Death:
    """The moment the application learnt the socket was gone."""

    t_s: float
    socket: str
    errno: str | None


@dataclass
class CaseContext:
    """Everything a running case touches; `close` leaves the pair as it found it."""

    pair: Pair
    params: dict[str, int | float]
    port: int
    t0: float = field(default_factory=time.time)
    events: list[AppEvent] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    death: Death | None = None
    state_at_cut: SocketState | None = None
    sockets: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        router = self.pair.router
        self.path = PathControl(
            router.netns,
            f"tcpt{self.pair.name}",
            router.interface_to(self.pair.client.name).name,
            router.interface_to(self.pair.server.name).name,
        )
        self.capture: Capture | None = None
        self.client: Sampler | None = None
        self.server: Sampler | None = None

    def start(self) -> None:
        """Start the capture in the router and the timer samplers in both nodes; the case clock starts."""
        self.t0 = time.time()
        self.capture = Capture(self.pair.router.netns, self.path.client_if, self.path.server_if)
        port = self.port
        self.client = Sampler(
            self.pair.client.netns, port, lambda s: "client" if s.dport == port else None, self.t0
        )
        self.server = Sampler(
            self.pair.server.netns,
            port,
            lambda s: None if s.state == "LISTEN" else "server" if s.sport == port else None,
            self.t0,
        )

    def now(self) -> float:
        """Seconds since the case started."""
        return time.time() - self.t0

    def event(self, side: str, what: str, err: int | None = None) -> None:
        """Record what the application saw."""
        name = errno_module.errorcode.get(err, str(err)) if err else None
        self.events.append(AppEvent(t_s=round(self.now(), 6), side=side, what=what, errno=name))  # type: ignore[arg-type]

    def died(self, side: str, err: int | None, what: str) -> None:
        """Record the socket's death as the application saw it."""
        self.event(side, what, err)
        name = errno_module.errorcode.get(err, str(err)) if err else None
        self.death = Death(self.events[-1].t_s, side, name)

    def mark(self, name: str) -> float:
        """Remember a moment of the experiment (e.g. the cut) and return it."""
        self.marks[name] = round(self.now(), 6)
        self.events.append(AppEvent(t_s=self.marks[name], side="experiment", what=name))
        return self.marks[name]

    def cut(self) -> None:
        """Cut the path both ways."""
        self.path.cut()
        self.mark("path cut")

    def socket_in(self, node: NodePlan) -> socket.socket:
        """A TCP socket in a node's namespace, closed by `close`."""
        with namespaces.inside(node.netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sockets.append(sock)
        return sock

    def listener(self, options: dict[int, tuple[int, int]] | None = None) -> socket.socket:
        """The server's listening socket on the case's port; `options`: {optname: (level, value)}."""
        sock = self.socket_in(self.pair.server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for name, (level, value) in (options or {}).items():
            sock.setsockopt(level, name, value)
        sock.bind((self.pair.server_address, self.port))
        sock.listen(8)
        return sock

    def wait_for(
        self, sampler: Sampler, test: Callable[[SocketState], bool], timeout: float
    ) -> SocketState | None:
        """Poll a node's sockets until one passes `test`; None on timeout."""
        waited = wait_until(
            lambda: next((state for state in sampler.query() if test(state)), None),
            lambda state: state is not None,
            timeout=timeout,
            interval=POLL_S,
        )
        return waited.value

    def sysctls(self, values: dict[str, int]) -> None:
        """Write TCP sysctls on both nodes of the pair."""
        for node in (self.pair.client, self.pair.server):
            kernel.write_sysctls(node.netns, values)

    def close(self) -> None:
        """Stop recording, abort every socket of the case, open the path again."""
        for recorder in (self.client, self.server, self.capture):
            if recorder is not None:
                recorder.stop()
        for sock in self.sockets:
            abort(sock)
        self.path.restore()


def abort(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0), so no orphan keeps retransmitting a FIN into a cut path."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # already closed, or never connected
    sock.close()
