"""The TCP timeout predictions reproduce the kernel's documented numbers, and parameters are validated."""

from __future__ import annotations

import pytest

from edgesim.errors import EdgesimError
from edgesim.experiments.tcp_timeouts import params, predict
from edgesim.experiments.tcp_timeouts.cases import CASES


def test_syn_retries_without_linear_timeouts_is_the_classic_127_seconds() -> None:
    # ip-sysctl.rst, tcp_syn_retries: "The default value of 6 corresponds to 63 seconds (1+2+4+8+16+32) till
    # the last retransmission ... and 127 seconds for the final timeout" (exponential backoff from 1 s).
    schedule = predict.syn_sent(6, 0)
    assert schedule.sends == (0, 1, 3, 7, 15, 31, 63)
    assert schedule.death == 127


def test_linear_syn_timeouts_add_retransmissions_in_about_the_same_time() -> None:
    schedule = predict.syn_sent(6, 4)
    assert schedule.sends == (0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67)
    assert schedule.death == 131
    # With few retries the classic time budget ends it first: 6 SYNs instead of 3, same 7 s.
    assert predict.syn_sent(2, 4) == predict.Schedule((0, 1, 2, 3, 4, 5), 7, (1, 1, 1, 1, 1, 2), 2)
    assert predict.syn_sent(2, 0).sends == (0, 1, 3)
    assert predict.syn_sent(2, 0).death == 7


def test_user_timeout_caps_connect() -> None:
    schedule = predict.syn_sent(6, 4, user_timeout=4.5)
    assert schedule.sends == (0, 1, 2, 3, 4)
    assert schedule.death == pytest.approx(4.5)


def test_synack_retries_default_is_63_seconds() -> None:
    # ip-sysctl.rst, tcp_synack_retries: "5 ... the final timeout for a passive TCP connection ... 63 s".
    assert predict.syn_recv(5).death == 63
    assert predict.syn_recv(5).retransmissions == 5


def test_defer_accept_holds_back_synack_retransmissions() -> None:
    assert predict.secs_to_retrans(3) == 2
    assert predict.secs_to_retrans(1) == 1
    schedule = predict.syn_recv(2, defer_retrans=2, acked=True)
    assert schedule.sends == (0, 3)  # nothing resent at 1 s: the client already ACKed
    assert schedule.death == 7


def test_tcp_retries2_default_is_924_6_seconds() -> None:
    # ip-sysctl.rst, tcp_retries2: "The default value of 15 yields a hypothetical timeout of 924.6 seconds".
    assert predict.model_timeout(15, predict.RTO_MIN_S) == pytest.approx(924.6)


def test_retransmissions_die_one_budget_after_the_first_rto_retransmission() -> None:
    schedule = predict.retransmissions(0.2, 0.0, 2)
    # TLP at 0.2 s, RTOs at 0.4, 0.8, 1.6 s; budget 1.4 s counted from 0.4 s; dies at 3.2 s.
    assert schedule.sends == pytest.approx((0, 0.2, 0.4, 0.8, 1.6))
    assert schedule.death == pytest.approx(3.2)
    no_tlp = predict.retransmissions(0.2, 0.0, 2, tail_loss_probe=False)
    assert no_tlp.sends == pytest.approx((0, 0.2, 0.6, 1.4))


def test_keepalive_with_user_timeout_ignores_keepcnt() -> None:
    assert predict.keepalive(7200, 75, 9).death == 7200 + 75 * 9
    assert predict.keepalive(1, 5, 3, user_timeout=3).sends == (1,)
    assert predict.keepalive(1, 5, 3, user_timeout=3).death == 6
    assert predict.keepalive(1, 5, 3, user_timeout=7.5).death == 11
    large = predict.keepalive(1, 5, 3, user_timeout=20)
    assert large.sends == (1, 6, 11, 16)  # four probes, though TCP_KEEPCNT is 3
    assert large.death == 21


def test_zero_window_probes_and_user_timeout_from_the_first_probe() -> None:
    schedule = predict.zero_window(1.0, 0.2, 0, 0, 3)
    assert schedule.sends == pytest.approx((1.0, 1.4, 2.2))
    assert schedule.death == pytest.approx(3.8)
    uto = predict.zero_window(1.0, 0.2, 1, 0, 15, user_timeout=1.0, first_probe=0.5)
    assert uto.death == pytest.approx(1.5)


def test_timer_wheel_granules_at_250_hz() -> None:
    assert predict.wheel_granule(0.2, 250) == pytest.approx(2 / 250)  # level 0: 1 jiffy + rounding
    assert predict.wheel_granule(1.0, 250) == pytest.approx(9 / 250)  # level 1: 8 jiffies
    assert predict.wheel_granule(5.0, 250) == pytest.approx(65 / 250)  # level 2: 64 jiffies
    assert predict.wheel_granule(20.0, 250) == pytest.approx(513 / 250)  # level 3: 512 jiffies


def test_every_default_case_is_clear_of_timer_boundaries() -> None:
    # A default that sits within timer lateness of a decision would make its packet count a coin toss.
    for case in CASES:
        schedule = getattr(case, "_schedule", None)
        if case.family in ("SYN-SENT", "SYN-RECV", "idle ESTABLISHED"):
            defaults = {key: 0 for key in params.SYSCTLS}
            defaults.update(tcp_syn_retries=6, tcp_syn_linear_timeouts=4, tcp_synack_retries=5)
            defaults.update(tcp_keepalive_time=7200, tcp_keepalive_intvl=75, tcp_keepalive_probes=9)
            defaults.update(tcp_rto_max_ms=120000, tcp_early_retrans=3)
            found = schedule({**defaults, **case.defaults})
        elif case.family == "busy ESTABLISHED":
            # The RTO this lab measures: 200 ms plus a tiny SRTT, rounded up to whole jiffies (HZ=250).
            found = schedule({"tcp_retries2": 15, "tcp_early_retrans": 3, **case.defaults}, 0.204, 0.0001)
        else:
            continue
        if found.margin is not None:
            assert found.margin > predict.timer_slack(found.delays, 250), case.name


def test_param_parsing_reports_every_problem() -> None:
    parsed = params.parse_overrides(["tcp_retries2=3", "observe_s=2.5"])
    assert parsed == {"tcp_retries2": 3, "observe_s": 2.5}
    with pytest.raises(EdgesimError) as caught:
        params.parse_overrides(["nope=1", "tcp_retries2=x", "novalue"])
    locations = [p.location for p in caught.value.problems]
    assert locations == ["--param nope", "--param tcp_retries2", "--param novalue"]


def test_param_bounds_and_applicability() -> None:
    available = set(params.SYSCTLS)
    resolved = params.resolve("syn-sent", {"tcp_syn_retries": 2}, {"tcp_syn_retries": 3}, available)
    assert resolved == {"tcp_syn_retries": 3}
    with pytest.raises(EdgesimError) as caught:
        params.resolve("busy", {"TCP_USER_TIMEOUT": 2500}, {"TCP_USER_TIMEOUT": -1}, available)
    assert caught.value.problems[0].location == "--param TCP_USER_TIMEOUT"
    with pytest.raises(EdgesimError):
        older_kernel = available - {"tcp_syn_linear_timeouts"}
        params.resolve("syn-sent", {}, {"tcp_syn_linear_timeouts": 1}, older_kernel)
    assert params.unused({"TCP_DEFER_ACCEPT": 3}, {"syn-sent": {"TCP_SYNCNT": 1}}) == ["TCP_DEFER_ACCEPT"]
