"""What the kernel's timer algorithms predict for each case: when packets go out, when the socket dies. Pure.

Each function replays one of the kernel's timers (net/ipv4/tcp_timer.c, inet_connection_sock.c) step by
step, as documented in ip-sysctl.rst and tcp(7), with the rules of this kernel generation (6.x):

- SYN-SENT gives up at the first retransmission timer where either the retransmission count reaches
  `syn retries + tcp_syn_linear_timeouts`, or the time since the first SYN reaches the classic exponential
  total `(2^(retries+1) - 1) s` (or TCP_USER_TIMEOUT when set). The first `tcp_syn_linear_timeouts` retries
  are 1 s apart instead of doubling, so more SYNs fit into (about) the same total time as on older kernels.
- ESTABLISHED with data in flight dies when the time since the first RTO retransmission (`retrans_stamp`,
  which this kernel takes after the retransmission is sent) reaches `tcp_model_timeout(tcp_retries2,
  TCP_RTO_MIN)`, or TCP_USER_TIMEOUT, checked each time the RTO timer fires. A tail loss probe (TLP) goes
  out before the first RTO.
- Keepalive: once TCP_USER_TIMEOUT is set, TCP_KEEPCNT is ignored; the socket dies at the first keepalive
  timer at which the user timeout has elapsed since the last received packet and a probe is unanswered.
- Zero window (persist timer): dies when `tcp_retries2` probes in a row go unanswered, or when
  TCP_USER_TIMEOUT has passed since the first probe of the stall (answered probes do not restart it).

Times are seconds; a Schedule is relative to the anchor named by the caller unless a function says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TIMEOUT_INIT_S = 1.0  # TCP_TIMEOUT_INIT: the first SYN and SYN-ACK retransmission timeout
RTO_MIN_S = 0.2  # TCP_RTO_MIN: the floor of the RTO and the base of tcp_retries2's time budget
RTO_MAX_S = 120.0  # TCP_RTO_MAX, the default of net.ipv4.tcp_rto_max_ms
PROBE0_BACKOFF_CAP = 10  # tcp_probe0_when(): ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1
DEFAULT_HZ = 250  # used only when the kernel's HZ cannot be read
# The timer wheel (kernel/time/timer.c): a timer lands in level n when its delay is below 63 << 3n jiffies and
# fires at the next multiple of 8^n jiffies after its expiry: late by at most one granule, never early.
WHEEL_LEVEL_START = 63
WHEEL_LEVEL_SHIFT = 3


@dataclass(frozen=True)
class Schedule:
    """A predicted timeline: packets sent and the moment of death, plus every timer armed on the way."""

    sends: tuple[float, ...]  # (re)transmissions or probes, seconds after the anchor
    death: float | None  # seconds after the anchor; None: the socket never dies on its own
    delays: tuple[float, ...]  # the delay of every timer armed between the anchor and the death
    # How far below its time budget the closest "not yet" decision was: a late timer (see timer_slack) can
    # only push a firing later, so a margin smaller than the lateness means the socket might die one step
    # early.
    margin: float | None = None

    @property
    def retransmissions(self) -> int:
        """Packets sent after the first one (for schedules whose first send is the original)."""
        return max(len(self.sends) - 1, 0)


def _ilog2(value: float) -> int:
    return max(int(value + 1e-9).bit_length() - 1, 0)


def model_timeout(boundary: int, rto_base: float, rto_max: float = RTO_MAX_S) -> float:
    """tcp_model_timeout(): the time `boundary` doubling timeouts from `rto_base` take (capped at rto_max)."""
    thresh = _ilog2(rto_max / rto_base)
    if boundary <= thresh:
        return ((2 << boundary) - 1) * rto_base
    return ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max


def syn_sent(
    syn_retries: int, linear_timeouts: int, user_timeout: float | None = None, rto_max: float = RTO_MAX_S
) -> Schedule:
    """SYN-SENT against a peer that drops SYNs; anchor: the first SYN. `syn_retries`: TCP_SYNCNT or sysctl."""
    max_retransmits = syn_retries + linear_timeouts
    budget = user_timeout or model_timeout(syn_retries, TIMEOUT_INIT_S, rto_max)
    t, rto, retransmits, margin = 0.0, TIMEOUT_INIT_S, 0, None
    sends, delays = [0.0], [TIMEOUT_INIT_S]
    t += TIMEOUT_INIT_S
    while True:
        # tcp_write_timeout(); retransmits_timed_out() never fires before the first retransmission.
        if retransmits >= max_retransmits or (retransmits > 0 and t >= budget - 1e-9):
            return Schedule(tuple(sends), t, tuple(delays), margin)
        if retransmits > 0:
            margin = _closer(margin, budget - t)
        retransmits += 1
        sends.append(t)
        # icsk_backoff counts the retransmissions; the first `linear_timeouts` keep the RTO at 1 s.
        if retransmits > linear_timeouts:
            rto = min(2 * rto, rto_max)
        delay = _clamp_to_user_timeout(rto, user_timeout, t)
        delays.append(delay)
        t += delay


def _closer(margin: float | None, distance: float) -> float:
    return distance if margin is None else min(margin, distance)


def _clamp_to_user_timeout(rto: float, user_timeout: float | None, elapsed: float) -> float:
    """tcp_clamp_rto_to_user_timeout(): never sleep past the user timeout (1 jiffy when it has passed)."""
    if not user_timeout:
        return rto
    remaining = user_timeout - elapsed
    return min(rto, remaining) if remaining > 0 else 1 / DEFAULT_HZ


def secs_to_retrans(seconds: int, timeout: float = TIMEOUT_INIT_S, rto_max: float = RTO_MAX_S) -> int:
    """TCP_DEFER_ACCEPT seconds → SYN-ACK retransmissions (the kernel stores the option that way)."""
    if seconds <= 0:
        return 0
    count, period = 1, timeout
    while seconds > period and count < 255:
        count += 1
        timeout = min(2 * timeout, rto_max)
        period += timeout
    return count


def syn_recv(synack_retries: int, defer_retrans: int = 0, acked: bool = False) -> Schedule:
    """A request socket in SYN-RECV whose SYN-ACKs get no answer; anchor: the first SYN-ACK.

    With TCP_DEFER_ACCEPT (`defer_retrans` > 0) and the client's data-less ACK received (`acked`), the
    SYN-ACK is not resent until the last deferral round, and the request lives until both limits are reached
    (reqsk_timer_handler and syn_ack_recalc in inet_connection_sock.c).
    """
    t, num = 0.0, 0
    sends, delays = [0.0], []
    while True:
        delay = min(TIMEOUT_INIT_S * 2**num, RTO_MAX_S)
        delays.append(delay)
        t += delay
        if defer_retrans:
            expire = num >= synack_retries and (not acked or num >= defer_retrans)
            resend = not acked or num >= defer_retrans - 1
        else:
            expire, resend = num >= synack_retries, True
        if expire:
            return Schedule(tuple(sends), t, tuple(delays))
        if resend:
            sends.append(t)
        num += 1


def keepalive(idle: float, interval: float, count: int, user_timeout: float | None = None) -> Schedule:
    """Keepalive on an idle connection whose peer vanished; anchor: the last packet the socket received."""
    t, probes, margin = idle, 0, None
    sends, delays = [], [idle]
    while True:
        if user_timeout:
            dead = t >= user_timeout - 1e-9 and probes > 0  # TCP_KEEPCNT plays no part any more
            if not dead and probes > 0:
                margin = _closer(margin, user_timeout - t)
        else:
            dead = probes >= count
        if dead:
            return Schedule(tuple(sends), t, tuple(delays), margin)
        sends.append(t)
        probes += 1
        delays.append(interval)
        t += interval


def retransmissions(
    rto: float,
    srtt: float,
    retries2: int,
    user_timeout: float | None = None,
    tail_loss_probe: bool = True,
    rto_max: float = RTO_MAX_S,
) -> Schedule:
    """One unacknowledged segment to a vanished peer; anchor: its original transmission."""
    t = 0.0
    sends, delays = [0.0], []
    if tail_loss_probe:
        # tcp_schedule_loss_probe(): 2·SRTT + TCP_RTO_MIN for a single segment in flight, but never after the
        # RTO.
        pto = min(2 * srtt + RTO_MIN_S, rto)
        t += pto
        sends.append(t)
        delays.append(pto)
    # The probe refreshed the segment's send time, and the RTO counts from there.
    t += rto
    delays.append(rto)
    stamp = t  # retrans_stamp: the first RTO retransmission
    budget = user_timeout or model_timeout(retries2, RTO_MIN_S, rto_max)
    current, retransmits, margin = rto, 0, None
    while True:
        if retransmits > 0 and t - stamp >= budget - 1e-9:
            return Schedule(tuple(sends), t, tuple(delays), margin)
        if retransmits > 0:
            margin = _closer(margin, budget - (t - stamp))
        sends.append(t)
        retransmits += 1
        current = min(2 * current, rto_max)
        delay = _clamp_to_user_timeout(current, user_timeout, t - stamp)
        delays.append(delay)
        t += delay


def zero_window(
    next_probe: float,
    rto: float,
    backoff: int,
    probes_out: int,
    retries2: int,
    user_timeout: float | None = None,
    first_probe: float | None = None,
    rto_max: float = RTO_MAX_S,
    jiffy: float = 1 / DEFAULT_HZ,
) -> Schedule:
    """The persist timer after the path is cut on a zero window. Absolute times (the caller's clock), not
    relative.

    `next_probe`, `backoff` and `probes_out` are the timer's state when the path was cut; `first_probe` is
    when
    the stall's first probe went out, if it already did (its answer did not reset the user-timeout clock).
    """
    base = max(rto, RTO_MIN_S)
    t, probes, stamp, margin = next_probe, probes_out, first_probe, None
    sends: list[float] = []
    delays = [min(base * 2 ** min(backoff, PROBE0_BACKOFF_CAP), rto_max)]
    while True:
        if stamp is None:
            stamp = t
        elif user_timeout:
            if t - stamp >= user_timeout - 1e-9:
                return Schedule(tuple(sends), t, tuple(delays), margin)
            margin = _closer(margin, user_timeout - (t - stamp))
        if probes >= retries2:
            return Schedule(tuple(sends), t, tuple(delays), margin)
        sends.append(t)
        probes += 1
        if backoff < retries2:
            backoff += 1
        delay = min(base * 2 ** min(backoff, PROBE0_BACKOFF_CAP), rto_max)
        if user_timeout:
            # tcp_clamp_probe0_to_user_timeout(): at least TCP_TIMEOUT_MIN (2 jiffies).
            delay = min(delay, max(user_timeout - (t - stamp), 2 * jiffy))
        delays.append(delay)
        t += delay


def wheel_granule(delay: float, hz: int | None) -> float:
    """How late the timer wheel may fire a timer armed for `delay` s (one granule plus jiffy rounding)."""
    if hz is None:
        # Every level's granule is at most 8/63 of the smallest delay it holds.
        return delay * 8 / 63 + 0.004
    jiffies = math.ceil(delay * hz - 1e-9)
    level, start = 0, WHEEL_LEVEL_START
    while jiffies >= start and level < 8:
        level += 1
        start <<= WHEEL_LEVEL_SHIFT
    return ((1 << (WHEEL_LEVEL_SHIFT * level)) + 1) / hz


def timer_slack(delays: tuple[float, ...] | list[float], hz: int | None) -> float:
    """The most a chain of timers can add up late: the sum of their granules."""
    return sum(wheel_granule(d, hz) for d in delays)
