"""The sockets' kernel timers over time, through sock_diag (pyroute2's DiagSocket): what `ss -tnoi` shows, as
data.

A sampler thread per node dumps the node's TCP sockets every few milliseconds and keeps an entry whenever
something changes: the state, the timer kind (on, keepalive, persist, timewait), the retransmission or probe
count, the backoff, or the timer being re-armed to a new expiry; and a CLOSED entry when the socket is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgesim.experiments.tcp_timeouts.records import TimerSample
from edgesim.probes.sockdiag import NamespaceDiagSocket

TIMERS = {0: "off", 1: "on", 2: "keepalive", 3: "timewait", 4: "persist"}
STATES = {
    1: "ESTABLISHED",
    2: "SYN-SENT",
    3: "SYN-RECV",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "CLOSE",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
}
INTERVAL_S = 0.02
REARM_S = 0.05  # a new expiry further than this from the previous one is a re-armed timer


@dataclass(frozen=True)
class SocketState:
    """One TCP socket as sock_diag reports it."""

    sport: int
    dport: int
    state: str
    timer: str
    expires_ms: int | None
    retransmits: int
    probes: int
    backoff: int | None
    rto_ms: float | None
    srtt_ms: float | None


def _decode(msg: Any) -> SocketState:
    info = msg.get_attr("INET_DIAG_INFO")
    timer = TIMERS.get(msg["idiag_timer"], str(msg["idiag_timer"]))
    if info is not None:
        retransmits, probes = info["tcpi_retransmits"], info["tcpi_probes"]
        backoff, rto, srtt = info["tcpi_backoff"], info["tcpi_rto"] / 1000, info["tcpi_rtt"] / 1000
    else:
        # Request and TIME-WAIT sockets carry no tcp_info; idiag_retrans is their SYN-ACK retransmission
        # count.
        retransmits, probes, backoff, rto, srtt = msg["idiag_retrans"], 0, None, None, None
    return SocketState(
        sport=msg["idiag_sport"],
        dport=msg["idiag_dport"],
        state=STATES.get(msg["idiag_state"], str(msg["idiag_state"])),
        timer=timer,
        expires_ms=msg["idiag_expires"] if timer != "off" else None,
        retransmits=retransmits,
        probes=probes,
        backoff=backoff,
        rto_ms=rto,
        srtt_ms=srtt,
    )


def _query(diag: NamespaceDiagSocket, port: int) -> list[SocketState]:
    return [s for s in map(_decode, diag.tcp()) if port in (s.sport, s.dport)]


class Sampler:
    """Samples the TCP sockets of one node that use `port`, labelled by `label(state)`, until `stop`."""

    def __init__(self, netns: str, port: int, label: Callable[[SocketState], str | None], t0: float) -> None:
        self.port = port
        self.label = label
        self.t0 = t0
        self.samples: list[TimerSample] = []
        self.netns = netns
        # pyroute2 sockets belong to the thread that made them: one for the sampler thread (made there), one
        # for the thread that owns the Sampler (for `query`).
        self._diag = NamespaceDiagSocket(netns)
        self._last: dict[tuple[int, int], tuple[TimerSample, float | None]] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{netns}", daemon=True)
        self._thread.start()
        self._ready.wait()

    def query(self) -> list[SocketState]:
        """The node's sockets on the case's port, now (from the thread that created the Sampler)."""
        return _query(self._diag, self.port)

    def _run(self) -> None:
        diag = NamespaceDiagSocket(self.netns)
        self._ready.set()
        try:
            self._loop(diag)
        finally:
            diag.close()

    def _loop(self, diag: NamespaceDiagSocket) -> None:
        while not self._stop.wait(INTERVAL_S):
            now = time.time() - self.t0
            seen = set()
            for state in _query(diag, self.port):
                label = self.label(state)
                if label is None:
                    continue
                key = (state.sport, state.dport)
                seen.add(key)
                self._record(key, label, state, now)
            for key in set(self._last) - seen:
                previous, _ = self._last.pop(key)
                if previous.state != "CLOSED":
                    gone = previous.model_copy(
                        update={"t_s": round(now, 3), "state": "CLOSED", "timer": "off", "expires_ms": None}
                    )
                    self.samples.append(gone)

    def _record(self, key: tuple[int, int], label: str, state: SocketState, now: float) -> None:
        sample = TimerSample(
            t_s=round(now, 3),
            socket=label,
            state=state.state,
            timer=state.timer,
            expires_ms=state.expires_ms,
            retransmits=state.retransmits,
            probes=state.probes,
            backoff=state.backoff,
            rto_ms=state.rto_ms,
        )
        deadline = now + state.expires_ms / 1000 if state.expires_ms is not None else None
        previous = self._last.get(key)
        if previous is not None:
            before, before_deadline = previous
            same = (before.state, before.timer, before.retransmits, before.probes, before.backoff) == (
                sample.state,
                sample.timer,
                sample.retransmits,
                sample.probes,
                sample.backoff,
            )
            rearmed = deadline is not None and (
                before_deadline is None or abs(deadline - before_deadline) > REARM_S
            )
            if same and not rearmed:
                return
        self._last[key] = (sample, deadline)
        self.samples.append(sample)

    def gone_at(self, label: str) -> float | None:
        """When the socket with this label was first seen gone (CLOSED), if it was."""
        return next((s.t_s for s in self.samples if s.socket == label and s.state == "CLOSED"), None)

    def stop(self) -> None:
        """Stop sampling and close the netlink socket."""
        self._stop.set()
        self._thread.join()
        self._diag.close()
