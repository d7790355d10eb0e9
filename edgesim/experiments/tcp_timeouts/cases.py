"""The experiment cases: how each one makes a connection lose its peer, and what the kernel should do then.

A case family is a class with `run` (the socket choreography, in a pair of lab hosts) and `expected` (the
kernel algorithm of `predict.py`, fed with the case's parameters and with what was measured before the
peer vanished, e.g. the RTO). Instances of a family differ by their default parameters.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass

from edgesim.experiments.tcp_timeouts import predict
from edgesim.experiments.tcp_timeouts.context import CaseContext
from edgesim.experiments.tcp_timeouts.params import SYSCTLS, Value
from edgesim.experiments.tcp_timeouts.records import Packet, Prediction

# Margins of the death-time check: kernel timers never fire early (anchors come from kernel packet
# timestamps),
# and the application may learn of the death late by thread scheduling on a loaded machine.
EARLY_S = 0.1
LATE_S = 0.35
EXTRA_WAIT_S = 5.0  # how long past the predicted latest death a case keeps waiting before giving up
ETIMEDOUT = "ETIMEDOUT"


@dataclass(frozen=True)
class Expected:
    """A schedule placed on the case's clock, with the counted packet kind and the reasoning."""

    schedule: predict.Schedule
    anchor: float
    errno: str | None
    count_kind: str
    basis: str
    absolute: bool = False  # the schedule's times are already on the case clock


class Case:
    """One parameterised experiment case."""

    family = ""

    def __init__(self, name: str, description: str, defaults: dict[str, Value]) -> None:
        self.name = name
        self.description = description
        self.defaults = defaults

    def sysctls(self, params: dict[str, Value]) -> dict[str, int]:
        """The case's sysctl settings (short names) among its parameters."""
        return {k: int(v) for k, v in params.items() if k in SYSCTLS}

    def budget_s(self, params: dict[str, Value]) -> float:
        """Roughly how long the case runs with these parameters (for scheduling and for its time limit)."""
        raise NotImplementedError

    def run(self, ctx: CaseContext) -> None:
        """Make the connection, lose the peer, wait for the socket to die; record into ctx."""
        raise NotImplementedError

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """The kernel's predicted schedule for what was run."""
        raise NotImplementedError

    def counted(self, ctx: CaseContext, packets: list[Packet]) -> int:
        """The measured packets of the predicted kind."""
        raise NotImplementedError

    def prediction(self, ctx: CaseContext, packets: list[Packet], hz: int | None) -> Prediction:
        """The expected death time with its tolerance, errno and packet count."""
        exp = self.expected(ctx, packets)
        shift = 0.0 if exp.absolute else exp.anchor
        sends = [round(t + shift, 3) for t in exp.schedule.sends]
        count = self._predicted_count(exp)
        if exp.schedule.death is None:
            return Prediction(
                died_at_s=None,
                low_s=None,
                high_s=None,
                errno=None,
                count=count,
                count_kind=exp.count_kind,
                sends_s=sends,
                basis=exp.basis,
            )
        died = exp.schedule.death + shift
        slack = predict.timer_slack(exp.schedule.delays, hz)
        basis = exp.basis
        if exp.schedule.margin is not None and exp.schedule.margin < slack:
            basis += (
                f" [caution: a timer decision is {exp.schedule.margin * 1000:.0f} ms from its budget, "
                f"less than the timers' possible lateness ({slack * 1000:.0f} ms): "
                "the socket may die one step early]"
            )
        return Prediction(
            died_at_s=round(died, 3),
            low_s=round(died - EARLY_S, 3),
            high_s=round(died + slack + LATE_S, 3),
            errno=exp.errno,
            count=count,
            count_kind=exp.count_kind,
            sends_s=sends,
            basis=basis,
        )

    def _predicted_count(self, exp: Expected) -> int:
        return len(exp.schedule.sends)


def _first(packets: list[Packet], direction: str, kind: str, after: float = -1.0) -> Packet | None:
    return next((p for p in packets if p.direction == direction and p.kind == kind and p.t_s >= after), None)


def _count(packets: list[Packet], direction: str, kinds: tuple[str, ...], after: float = -1.0) -> int:
    return sum(1 for p in packets if p.direction == direction and p.kind in kinds and p.t_s >= after)


def _anchor(packet: Packet | None, what: str) -> float:
    if packet is None:
        raise RuntimeError(f"the capture has no {what}; cannot place the prediction")
    return packet.t_s


def _user_timeout_s(params: dict[str, Value]) -> float | None:
    value = params.get("TCP_USER_TIMEOUT", 0)
    return value / 1000 if value else None


def _rto_max(params: dict[str, Value]) -> float:
    return params.get("tcp_rto_max_ms", 120000) / 1000


def _connect_timing_out(ctx: CaseContext, sock: socket.socket, limit: float) -> None:
    """Connect and wait for the answer; record the errno the application gets."""
    sock.settimeout(limit)
    try:
        sock.connect((ctx.pair.server_address, ctx.port))
        ctx.event("client", "connect() succeeded")
    except OSError as err:
        if err.errno:
            ctx.died("client", err.errno, "connect() failed")
        else:
            ctx.event("client", f"still connecting after {limit:.0f} s; gave up waiting")


def _recv_until_error(ctx: CaseContext, sock: socket.socket, limit: float) -> None:
    """Block in recv() like an idle application; record the error that ends it, if any within `limit`."""
    sock.settimeout(limit)
    try:
        data = sock.recv(1)
        ctx.event("client", "recv() returned end of file" if not data else "recv() returned data")
    except OSError as err:
        if err.errno:
            ctx.died("client", err.errno, "recv() failed")
        else:
            ctx.event("client", f"recv() still waiting after {limit:.1f} s; the socket lives")


def _set_client_options(sock: socket.socket, params: dict[str, Value]) -> None:
    if params.get("TCP_SYNCNT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, int(params["TCP_SYNCNT"]))
    if params.get("TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(params["TCP_USER_TIMEOUT"]))
    if params.get("SO_KEEPALIVE"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for key, option in (
            ("TCP_KEEPIDLE", socket.TCP_KEEPIDLE),
            ("TCP_KEEPINTVL", socket.TCP_KEEPINTVL),
            ("TCP_KEEPCNT", socket.TCP_KEEPCNT),
        ):
            if key in params:
                sock.setsockopt(socket.IPPROTO_TCP, option, int(params[key]))
    if params.get("SO_SNDBUF"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(params["SO_SNDBUF"]))


class _Handshake(Case):
    """A case whose socket retransmits one handshake packet until it gives up: counted after the first."""

    sender = ""  # the direction the packet goes, c>s or s>c
    kind = ""  # its kind in the capture
    what = ""  # its name in the prediction's wording
    errno: str | None = None  # what the application sees when the socket dies

    def _schedule(self, params: dict[str, Value]) -> predict.Schedule:
        raise NotImplementedError

    def budget_s(self, params: dict[str, Value]) -> float:
        """The predicted death."""
        return self._schedule(params).death or 0.0

    def _expected(self, params: dict[str, Value], packets: list[Packet], basis: str) -> Expected:
        """The schedule placed at the first packet, counting its retransmissions."""
        first = _anchor(_first(packets, self.sender, self.kind), self.what)
        return Expected(self._schedule(params), first, self.errno, f"{self.what} retransmissions", basis)

    def _predicted_count(self, exp: Expected) -> int:
        return exp.schedule.retransmissions

    def counted(self, ctx: CaseContext, packets: list[Packet]) -> int:
        """The packets after the first."""
        return max(_count(packets, self.sender, (self.kind,)) - 1, 0)


class SynSent(_Handshake):
    """1. connect() to a peer whose path drops every SYN: SYN retransmissions until the budget runs out."""

    family = "SYN-SENT"
    sender, kind, what, errno = "c>s", "syn", "SYN", ETIMEDOUT

    def _schedule(self, params: dict[str, Value]) -> predict.Schedule:
        retries = int(params.get("TCP_SYNCNT") or params["tcp_syn_retries"])
        return predict.syn_sent(
            retries, int(params.get("tcp_syn_linear_timeouts", 0)), _user_timeout_s(params), _rto_max(params)
        )

    def run(self, ctx: CaseContext) -> None:
        """Cut the path, then connect."""
        ctx.listener()
        client = ctx.socket_in(ctx.pair.client)
        _set_client_options(client, ctx.params)
        ctx.cut()
        _connect_timing_out(ctx, client, self.budget_s(ctx.params) * 1.2 + EXTRA_WAIT_S)

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """predict.syn_sent from the first SYN."""
        params = ctx.params
        retries = int(params.get("TCP_SYNCNT") or params["tcp_syn_retries"])
        source = "TCP_SYNCNT" if params.get("TCP_SYNCNT") else "tcp_syn_retries"
        linear = int(params.get("tcp_syn_linear_timeouts", 0))
        budget = (
            f"TCP_USER_TIMEOUT {params['TCP_USER_TIMEOUT']} ms"
            if params.get("TCP_USER_TIMEOUT")
            else f"(2^({retries}+1) - 1) x 1 s = {predict.model_timeout(retries, 1.0):g} s"
        )
        basis = (
            f"SYN timer from 1 s; {source}={retries} + tcp_syn_linear_timeouts={linear} retransmissions "
            f"at most, the first {linear} 1 s apart, then doubling; gives up at the first timer past {budget}"
        )
        return self._expected(params, packets, basis)


class SynRecv(_Handshake):
    """2. A request socket (SYN-RECV) whose SYN-ACKs go unanswered, with or without TCP_DEFER_ACCEPT."""

    family = "SYN-RECV"
    sender, kind, what = "s>c", "syn-ack", "SYN-ACK"

    def _defer(self, params: dict[str, Value]) -> int:
        return predict.secs_to_retrans(int(params.get("TCP_DEFER_ACCEPT", 0)))

    def _schedule(self, params: dict[str, Value]) -> predict.Schedule:
        defer = self._defer(params)
        return predict.syn_recv(int(params["tcp_synack_retries"]), defer, acked=defer > 0)

    def run(self, ctx: CaseContext) -> None:
        """Without defer: the SYN-ACKs are dropped and the client vanishes after its SYN.

        With TCP_DEFER_ACCEPT: the handshake completes (the client's ACK carries no data), then the client
        vanishes.
        """
        defer = int(ctx.params.get("TCP_DEFER_ACCEPT", 0))
        options = {socket.TCP_DEFER_ACCEPT: (socket.IPPROTO_TCP, defer)} if defer else {}
        listener = ctx.listener(options)
        listener.setblocking(False)
        client = ctx.socket_in(ctx.pair.client)
        client.setblocking(False)
        if not defer:
            ctx.path.drop_synack()
            ctx.mark("SYN-ACKs dropped")
        client.connect_ex((ctx.pair.server_address, ctx.port))
        assert ctx.server is not None
        if defer:
            _, writable, _ = select.select([], [client], [], 2.0)
            if writable and client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ctx.event("client", "connect() succeeded; the client sends nothing")
        elif ctx.wait_for(ctx.server, lambda s: s.state == "SYN-RECV", 2.0) is None:
            raise RuntimeError("the server never saw the SYN")
        ctx.cut()
        limit = self.budget_s(ctx.params) * 1.2 + EXTRA_WAIT_S
        while ctx.now() < limit:
            try:
                listener.accept()
                ctx.event("server", "accept() returned a connection")
            except BlockingIOError:
                pass
            if not [s for s in ctx.server.query() if s.sport == ctx.port and s.state != "LISTEN"]:
                ctx.died("server", None, "request socket gone; accept() never returned")
                return
            select.select([listener], [], [], 0.01)
        ctx.event("server", f"request socket still there after {limit:.0f} s")

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """predict.syn_recv from the first SYN-ACK."""
        params = ctx.params
        defer = self._defer(params)
        retries = int(params["tcp_synack_retries"])
        basis = f"request timer 1 s, doubling; tcp_synack_retries={retries}"
        if defer:
            basis += (
                f"; TCP_DEFER_ACCEPT {params['TCP_DEFER_ACCEPT']} s = {defer} retransmission periods: "
                f"the bare ACK is dropped, no SYN-ACK is resent before round {defer}, "
                "the request lives until both limits pass"
            )
        return self._expected(params, packets, basis)


class Idle(Case):
    """3 and 4. An idle ESTABLISHED connection whose path is cut: keepalive, TCP_USER_TIMEOUT, or nothing."""

    family = "idle ESTABLISHED"

    def _schedule(self, params: dict[str, Value]) -> predict.Schedule:
        if not params.get("SO_KEEPALIVE"):
            return predict.Schedule((), None, ())
        return predict.keepalive(
            params.get("TCP_KEEPIDLE", params["tcp_keepalive_time"]),
            params.get("TCP_KEEPINTVL", params["tcp_keepalive_intvl"]),
            int(params.get("TCP_KEEPCNT", params["tcp_keepalive_probes"])),
            _user_timeout_s(params),
        )

    def budget_s(self, params: dict[str, Value]) -> float:
        """The predicted death, or the observation time when none is expected."""
        return self._schedule(params).death or float(params.get("observe_s", 5))

    def run(self, ctx: CaseContext) -> None:
        """Connect, cut right away, and block in recv()."""
        listener = ctx.listener()
        client = ctx.socket_in(ctx.pair.client)
        _set_client_options(client, ctx.params)
        client.connect((ctx.pair.server_address, ctx.port))
        server, _ = listener.accept()
        ctx.sockets.append(server)
        ctx.event("client", "connected; both ends idle")
        ctx.cut()
        death = self._schedule(ctx.params).death
        limit = death * 1.2 + EXTRA_WAIT_S if death else float(ctx.params.get("observe_s", 5))
        _recv_until_error(ctx, client, limit)

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """predict.keepalive from the last packet the client received before the cut."""
        params = ctx.params
        cut = ctx.marks["path cut"]
        heard = [p for p in packets if p.direction == "s>c" and p.t_s <= cut]
        anchor = _anchor(heard[-1] if heard else None, "packet from the server before the cut")
        if not params.get("SO_KEEPALIVE"):
            basis = "no keepalive, no data: no timer runs, nothing is ever sent; the socket lives forever"
        else:
            idle = params.get("TCP_KEEPIDLE", params["tcp_keepalive_time"])
            intvl = params.get("TCP_KEEPINTVL", params["tcp_keepalive_intvl"])
            cnt = params.get("TCP_KEEPCNT", params["tcp_keepalive_probes"])
            if params.get("TCP_USER_TIMEOUT"):
                basis = (
                    f"keepalive {idle} s idle, probes every {intvl} s; with TCP_USER_TIMEOUT "
                    f"{params['TCP_USER_TIMEOUT']} ms set, TCP_KEEPCNT={cnt} is ignored: "
                    "dies at the first keepalive timer >= the user timeout after the last packet heard, "
                    "once a probe is unanswered"
                )
            else:
                basis = f"keepalive {idle} s idle + {intvl} s x {cnt} probes after the last packet heard"
        return Expected(self._schedule(params), anchor, ETIMEDOUT, "keepalive probes", basis)

    def counted(self, ctx: CaseContext, packets: list[Packet]) -> int:
        """Probes the client sent after the cut."""
        return _count(packets, "c>s", ("probe",), after=ctx.marks["path cut"])


class Busy(Case):
    """5. Data in flight when the path is cut: RTO retransmissions until tcp_retries2 or TCP_USER_TIMEOUT."""

    family = "busy ESTABLISHED"

    def _schedule(self, params: dict[str, Value], rto: float, srtt: float) -> predict.Schedule:
        return predict.retransmissions(
            rto,
            srtt,
            int(params["tcp_retries2"]),
            _user_timeout_s(params),
            tail_loss_probe=params.get("tcp_early_retrans", 3) >= 3,
            rto_max=_rto_max(params),
        )

    def budget_s(self, params: dict[str, Value]) -> float:
        """The predicted death with a typical lab RTO."""
        return (self._schedule(params, 0.21, 0.0001).death or 0.0) + 0.5

    def run(self, ctx: CaseContext) -> None:
        """Exchange a little to measure the RTT, cut, send `payload` bytes, block in recv()."""
        listener = ctx.listener()
        client = ctx.socket_in(ctx.pair.client)
        _set_client_options(client, ctx.params)
        client.connect((ctx.pair.server_address, ctx.port))
        server, _ = listener.accept()
        ctx.sockets.append(server)
        for _ in range(5):
            client.sendall(b"q" * 100)
            server.recv(100)
            server.sendall(b"a")
            client.recv(1)
        assert ctx.client is not None and ctx.server is not None
        # Cut only once nothing is unacknowledged either way (the last ACK may be a delayed one), so that only
        # the client's data is in flight.
        ctx.wait_for(ctx.server, lambda s: s.timer == "off", 1.0)
        ctx.state_at_cut = ctx.wait_for(ctx.client, lambda s: s.timer == "off", 1.0)
        ctx.cut()
        client.sendall(b"d" * int(ctx.params.get("payload", 1000)))
        ctx.event("client", f"sent {ctx.params.get('payload', 1000)} bytes into the cut path")
        _recv_until_error(ctx, client, self.budget_s(ctx.params) * 1.3 + EXTRA_WAIT_S)

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """predict.retransmissions from the data's first transmission, with the RTO measured before."""
        params = ctx.params
        state = ctx.state_at_cut
        if state is None or state.rto_ms is None or state.srtt_ms is None:
            raise RuntimeError("no RTO measured before the cut")
        rto, srtt = state.rto_ms / 1000, state.srtt_ms / 1000
        anchor = _anchor(_first(packets, "c>s", "data", after=ctx.marks["path cut"]), "data after the cut")
        tlp = params.get("tcp_early_retrans", 3) >= 3
        budget = (
            f"TCP_USER_TIMEOUT {params['TCP_USER_TIMEOUT']} ms (RTO timers clamped to it)"
            if params.get("TCP_USER_TIMEOUT")
            else f"tcp_retries2={params['tcp_retries2']}: "
            f"{predict.model_timeout(int(params['tcp_retries2']), predict.RTO_MIN_S, _rto_max(params)):g} s"
        )
        basis = (
            f"measured RTO {state.rto_ms:g} ms (SRTT {state.srtt_ms:g} ms); "
            + ("a tail loss probe, then " if tlp else "")
            + f"RTO retransmissions doubling; dies at the first RTO timer past {budget} after the first RTO "
            "retransmission (retrans_stamp)"
        )
        return Expected(
            self._schedule(params, rto, srtt), anchor, ETIMEDOUT, "retransmissions (TLP + RTO)", basis
        )

    def _predicted_count(self, exp: Expected) -> int:
        return exp.schedule.retransmissions

    def counted(self, ctx: CaseContext, packets: list[Packet]) -> int:
        """Retransmitted segments after the cut."""
        return _count(packets, "c>s", ("retransmit",), after=ctx.marks["path cut"])


class ZeroWindow(Case):
    """6. A receiver that stops reading (zero window), then the path is cut: persist-timer probes."""

    family = "zero window"

    def _schedule(
        self, ctx: CaseContext | None, params: dict[str, Value], first: float | None
    ) -> predict.Schedule:
        cut = bool(params.get("cut", 1))
        state = ctx.state_at_cut if ctx else None
        next_probe = (state.expires_ms or 0) / 1000 + ctx.marks["timer sampled"] if ctx and state else 0.25
        return predict.zero_window(
            next_probe,
            (state.rto_ms or 200) / 1000 if state else 0.21,
            (state.backoff or 0) if state else 0,
            state.probes if state else 0,
            # On an intact path every probe is answered, so the unanswered count never grows.
            int(params["tcp_retries2"]) if cut else 1 << 30,
            _user_timeout_s(params),
            first,
            _rto_max(params),
        )

    def budget_s(self, params: dict[str, Value]) -> float:
        """The predicted death from a typical start."""
        return self._schedule(None, params, None).death or 10.0

    def run(self, ctx: CaseContext) -> None:
        """The server never reads; the client writes until its window is zero, then the path is cut."""
        listener = ctx.listener({socket.SO_RCVBUF: (socket.SOL_SOCKET, int(ctx.params["SO_RCVBUF"]))})
        client = ctx.socket_in(ctx.pair.client)
        _set_client_options(client, ctx.params)
        client.connect((ctx.pair.server_address, ctx.port))
        server, _ = listener.accept()
        ctx.sockets.append(server)
        sender = threading.Thread(target=self._send, args=(ctx, client), daemon=True)
        sender.start()
        assert ctx.client is not None
        state = ctx.wait_for(ctx.client, lambda s: s.timer == "persist", 5.0)
        if state is None:
            raise RuntimeError("the window never closed")
        ctx.mark("window closed")
        if ctx.params.get("cut", 1):
            ctx.cut()
        # The timer's state right now: what the prediction starts from.
        ctx.state_at_cut = next((s for s in ctx.client.query() if s.dport == ctx.port), state)
        ctx.marks["timer sampled"] = round(ctx.now(), 6)
        sender.join(self.budget_s(ctx.params) * 1.3 + EXTRA_WAIT_S)
        if sender.is_alive():
            ctx.event("client", "send() still blocked; the socket lives")
            client.shutdown(socket.SHUT_RDWR)  # wakes the blocked send()
            sender.join()

    def _send(self, ctx: CaseContext, client: socket.socket) -> None:
        try:
            client.sendall(b"w" * (1 << 20))
            ctx.event("client", "send() completed")
        except OSError as err:
            if ctx.death is None and err.errno not in (None, 32):  # EPIPE: our own shutdown at the end
                ctx.died("client", err.errno, "send() failed")

    def expected(self, ctx: CaseContext, packets: list[Packet]) -> Expected:
        """predict.zero_window from the persist timer's state sampled at the cut."""
        params = ctx.params
        state = ctx.state_at_cut
        if state is None or state.timer != "persist":
            raise RuntimeError(f"the client's timer was not persist at the cut ({state})")
        first = _first(packets, "c>s", "probe")
        stamp = first.t_s if first and first.t_s <= ctx.marks["timer sampled"] else None
        schedule = self._schedule(ctx, params, stamp)
        limit = (
            f"TCP_USER_TIMEOUT {params['TCP_USER_TIMEOUT']} ms after the stall's first probe"
            if params.get("TCP_USER_TIMEOUT")
            else f"tcp_retries2={params['tcp_retries2']} unanswered probes"
        )
        basis = (
            f"persist timer at the cut: next probe in {state.expires_ms} ms, backoff {state.backoff}, "
            f"RTO {state.rto_ms:g} ms; probes doubling from the RTO; dies at {limit}"
        )
        return Expected(schedule, 0.0, ETIMEDOUT, "zero-window probes after the cut", basis, absolute=True)

    def counted(self, ctx: CaseContext, packets: list[Packet]) -> int:
        """Probes the client sent once the window had closed."""
        return _count(packets, "c>s", ("probe",), after=ctx.marks["window closed"])


KEEPALIVE_SHORT = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}

CASES: list[Case] = [
    SynSent("syn-sent", "connect() to a peer that drops SYNs, tcp_syn_retries=2", {"tcp_syn_retries": 2}),
    SynSent(
        "syn-sent-exponential",
        "the same with tcp_syn_linear_timeouts=0: the schedule of kernels before 6.5",
        {"tcp_syn_retries": 2, "tcp_syn_linear_timeouts": 0},
    ),
    SynSent("syn-sent-syncnt", "TCP_SYNCNT=1 on the socket overrides tcp_syn_retries", {"TCP_SYNCNT": 1}),
    SynSent(
        "syn-sent-user-timeout",
        "TCP_USER_TIMEOUT 4.5 s caps connect() whatever the retries say",
        {"TCP_USER_TIMEOUT": 4500},
    ),
    SynRecv(
        "syn-recv",
        "server in SYN-RECV, its SYN-ACKs dropped, tcp_synack_retries=2",
        {"tcp_synack_retries": 2},
    ),
    SynRecv(
        "defer-accept",
        "TCP_DEFER_ACCEPT 3 s, handshake completed by a data-less ACK, then the client vanishes",
        {"tcp_synack_retries": 2, "TCP_DEFER_ACCEPT": 3},
    ),
    Idle(
        "idle-no-keepalive",
        "idle connection, path cut, no keepalive: never dies",
        {"SO_KEEPALIVE": 0, "observe_s": 6},
    ),
    Idle(
        "idle-keepalive",
        "idle connection, path cut, keepalive 2 s idle + 1 s x 3 probes",
        {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 2, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3},
    ),
    # TCP_USER_TIMEOUT against keepalive 1 s + 5 s x 3: before the first probe, between two, after the last.
    *(
        Idle(
            f"keepalive-uto-{name}",
            f"keepalive 1 s + 5 s x 3 with TCP_USER_TIMEOUT {timeout_ms / 1000:g} s, {where}",
            {**KEEPALIVE_SHORT, "TCP_USER_TIMEOUT": timeout_ms},
        )
        for name, timeout_ms, where in (
            ("small", 3000, "smaller than the first probe interval"),
            ("between", 7500, "between two probes"),
            ("large", 20000, "beyond the last probe"),
        )
    ),
    Busy("busy-retries2", "data in flight, path cut, tcp_retries2=2", {"tcp_retries2": 2, "payload": 1000}),
    Busy(
        "busy-user-timeout",
        "data in flight, path cut, TCP_USER_TIMEOUT 2.5 s",
        {"TCP_USER_TIMEOUT": 2500, "payload": 1000},
    ),
    ZeroWindow(
        "zero-window",
        "receiver stops reading, window closes, path cut, tcp_retries2=3",
        {"tcp_retries2": 3, "SO_RCVBUF": 4096, "SO_SNDBUF": 16384, "cut": 1},
    ),
    ZeroWindow(
        "zero-window-user-timeout",
        "receiver stops reading, window closes, path cut, TCP_USER_TIMEOUT 2.5 s",
        {"TCP_USER_TIMEOUT": 2500, "SO_RCVBUF": 4096, "SO_SNDBUF": 16384, "cut": 1},
    ),
]
CASES_BY_NAME = {case.name: case for case in CASES}
