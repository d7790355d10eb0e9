"""The cases of the post the lab comes from, with the post's own figures, to run next to them.

Marek Majkowski, "When TCP sockets refuse to die", Cloudflare blog, 2019-09-20,
https://blog.cloudflare.com/when-tcp-sockets-refuse-to-die/ (measured on a 5.2 kernel, says the post).
Every figure below is read off the post's tcpdump excerpts: `died_s` is the time of its ETIMEDOUT, RST or
disappearance line, `packets` the retransmissions (or keepalive probes) it shows after the first packet.
The post's clock starts at the connection's first SYN; the lab's starts where its case starts (the
connection attempt, or the moment the path is cut), so the idle and busy rows differ by the handshake's
few milliseconds.

The post also shows the final handshake ACK, TCP_DEFER_ACCEPT and the zero-window probes, without a time
of death; those are in the lab's own cases (`defer-accept`, `zero-window`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesim.experiments.tcp_timeouts.cases import Busy, Case, Idle, SynRecv, SynSent

POST_URL = "https://blog.cloudflare.com/when-tcp-sockets-refuse-to-die/"
POST_KERNEL = "5.2"


@dataclass(frozen=True)
class PostFigure:
    """What the post measured for one case."""

    section: str  # the post's section heading
    died_s: float
    packets: int  # retransmissions or probes after the first packet, as the post's capture shows them
    errno: str  # what the application saw
    quote: str  # the post's own words on the figure


# The post's cases, under the lab's case families, with the post's parameters (defaults it relied on
# written out, so this kernel's defaults do not change the case).
POST_CASES: list[tuple[Case, PostFigure]] = [
    (
        SynSent(
            "post-syn-sent", "the post's SYN-SENT: tcp_syn_retries 6 (the default)", {"tcp_syn_retries": 6}
        ),
        PostFigure("SYN-SENT", 130.0, 6, "ETIMEDOUT", "By default the whole process takes 130 seconds"),
    ),
    (
        SynSent(
            "post-syn-sent-user-timeout",
            "the post's SYN-SENT with TCP_USER_TIMEOUT 5 s",
            {"tcp_syn_retries": 6, "TCP_USER_TIMEOUT": 5000},
        ),
        PostFigure(
            "SYN-SENT",
            5.05,
            6,
            "ETIMEDOUT",
            "we still saw the six SYN retries on the wire. This behaviour is probably a bug",
        ),
    ),
    (
        SynRecv(
            "post-syn-recv",
            "the post's SYN-RECV: tcp_synack_retries 5 (the default)",
            {"tcp_synack_retries": 5},
        ),
        PostFigure(
            "SYN-RECV", 64.61, 5, "(none: the server's request socket goes)", "disappears at the 64s mark"
        ),
    ),
    (
        Idle(
            "post-idle-keepalive",
            "the post's idle ESTAB: keepalive 5 s idle + 3 s x 3 probes",
            {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 3},
        ),
        PostFigure("Idle ESTAB is forever", 14.299, 3, "ETIMEDOUT", "the connection dies with ETIMEDOUT"),
    ),
    *(
        (
            Idle(
                f"post-keepalive-uto-{name}",
                f"the post's keepalive 1 s + 11 s x 3 with TCP_USER_TIMEOUT {timeout_ms / 1000:g} s",
                {
                    "SO_KEEPALIVE": 1,
                    "TCP_KEEPIDLE": 1,
                    "TCP_KEEPINTVL": 11,
                    "TCP_KEEPCNT": 3,
                    "TCP_USER_TIMEOUT": timeout_ms,
                },
            ),
            PostFigure("Keepalives with TCP_USER_TIMEOUT are confusing", died, probes, "ETIMEDOUT", quote),
        )
        for name, timeout_ms, died, probes, quote in (
            ("5", 5000, 12.233, 1, "timer for second probe fired, socket aborted due to TCP_USER_TIMEOUT"),
            ("12.5", 12500, 23.102, 2, "timer for third probe fired, socket aborted due to TCP_USER_TIMEOUT"),
            ("30", 30000, 67.235, 6, "With TCP_USER_TIMEOUT set, the TCP_KEEPCNT is totally ignored"),
        )
    ),
    (
        Busy(
            "post-busy",
            "the post's busy ESTAB: 11 bytes in flight, tcp_retries2 15 (the default)",
            {"tcp_retries2": 15, "payload": 11},
        ),
        PostFigure(
            "Busy ESTAB socket is not forever",
            939.5,
            15,
            "ETIMEDOUT",
            "The connection indeed died at ~940 seconds",
        ),
    ),
]
POST_CASES_BY_NAME = {case.name: (case, figure) for case, figure in POST_CASES}
# The post's cases that end within half a minute: the ones the test suite runs.
QUICK_POST_CASES = (
    "post-syn-sent-user-timeout",
    "post-idle-keepalive",
    "post-keepalive-uto-5",
    "post-keepalive-uto-12.5",
)
