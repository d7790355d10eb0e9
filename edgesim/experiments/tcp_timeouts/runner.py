"""Runs TCP timeout cases: brings up the TCP lab, runs the cases side by side in its host pairs, tears it
down.

Cases need per-namespace sysctls that conflict (tcp_retries2=3 here, 15 there), so each runs in a pair of
its own; a pair runs one case at a time, longest first, and leaves its sysctls as it found them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from edgesim import lab as lab_api
from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.experiments.tcp_timeouts import kernel
from edgesim.experiments.tcp_timeouts.cases import CASES, CASES_BY_NAME, Case
from edgesim.experiments.tcp_timeouts.context import CaseContext, Death, Pair, pairs_of
from edgesim.experiments.tcp_timeouts.params import SYSCTLS, Value, resolve, unused
from edgesim.experiments.tcp_timeouts.post import POST_CASES_BY_NAME
from edgesim.experiments.tcp_timeouts.records import CaseResult, Prediction

TOPOLOGY = lab_api.REPO_ROOT / "topology" / "tcplab.yml"
DEFAULT_LAB = "tcplab"
BASE_PORT = 10000


def select(names: list[str] | None) -> list[Case]:
    """The cases named (the lab's own when none is; the post's by their `post-` names), or an error."""
    if not names:
        return list(CASES)
    known = {**CASES_BY_NAME, **{name: case for name, (case, _) in POST_CASES_BY_NAME.items()}}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EdgesimError(
            [Problem(f"--case {n}", "no such case", f"one of {', '.join(known)}") for n in unknown]
        )
    return [known[n] for n in dict.fromkeys(names)]


def case_params(cases: list[Case], overrides: dict[str, Value]) -> dict[str, dict[str, Value]]:
    """Each case's validated parameters (its defaults with the overrides that apply to it)."""
    available = {key for key in SYSCTLS if Path("/proc/sys/net/ipv4", key).exists()}
    left = unused(overrides, {c.name: c.defaults for c in cases})
    if left:
        raise EdgesimError(
            [Problem(f"--param {k}", "no selected case uses it", "check --case, or drop it") for k in left]
        )
    return {case.name: resolve(case.name, case.defaults, overrides, available) for case in cases}


def run(
    names: list[str] | None = None,
    overrides: dict[str, Value] | None = None,
    lab: str = DEFAULT_LAB,
    console: Console | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run the cases in a lab of their own (brought up and torn down here); results in case order."""
    console = console or Console(stderr=True)
    cases = select(names)
    params = case_params(cases, overrides or {})
    lab_api.up(TOPOLOGY, lab=lab, console=console)
    try:
        plan = runtime.running_plan(lab)
        pairs = pairs_of(plan)
        baseline = kernel.read_sysctls(pairs[0].client.netns)
        hz = kernel.hz()
        settable = {k: v for k, v in baseline.items() if k in SYSCTLS}
        # Longest first, so the long cases do not end up last on a pair.
        order = sorted(
            enumerate(cases), key=lambda item: -item[1].budget_s({**settable, **params[item[1].name]})
        )
        todo: queue.Queue[tuple[int, Case]] = queue.Queue()
        for item in order:
            todo.put(item)
        results: dict[int, CaseResult] = {}

        def worker(pair: Pair) -> None:
            while True:
                try:
                    index, case = todo.get_nowait()
                except queue.Empty:
                    return
                result = run_case(case, pair, {**settable, **params[case.name]}, baseline, index, hz)
                results[index] = result
                if on_result:
                    on_result(result)

        # Daemon threads: on Ctrl-C the lab is torn down below and the process may exit without them.
        threads = [
            threading.Thread(target=worker, args=(pair,), name=f"pair-{pair.name}", daemon=True)
            for pair in pairs[: len(cases)]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        return [results[i] for i in sorted(results)]
    finally:
        lab_api.down(lab, console=console, quiet=True)


NO_PREDICTION = Prediction(
    died_at_s=None, low_s=None, high_s=None, errno=None, count=0, count_kind="", sends_s=[], basis=""
)


def _death_ok(death: Death | None, prediction: Prediction) -> bool:
    """Died within the predicted window with the predicted errno; or lives, as predicted."""
    if prediction.died_at_s is None:
        return death is None
    return (
        death is not None
        and prediction.low_s is not None
        and prediction.high_s is not None
        and prediction.low_s <= death.t_s <= prediction.high_s
        and death.errno == prediction.errno
    )


def run_case(
    case: Case, pair: Pair, params: dict[str, Value], baseline: dict[str, int], index: int, hz: int | None
) -> CaseResult:
    """Run one case in one pair and compare it with its prediction; never raises for a failed case."""
    ctx = CaseContext(pair, params, BASE_PORT + index)
    error = None
    effective: dict[str, int] = {}
    try:
        ctx.sysctls(case.sysctls(params))
        effective = kernel.read_sysctls(pair.client.netns)
        ctx.start()
        case.run(ctx)
    except Exception as err:  # a broken case is reported in its result; the other cases go on
        error = f"{type(err).__name__}: {err}"
    finally:
        duration = ctx.now()
        ctx.close()
        ctx.sysctls({k: v for k, v in baseline.items() if k in SYSCTLS})
    packets = (
        ctx.capture.packets(pair.client_address, pair.server_address, ctx.port, ctx.t0) if ctx.capture else []
    )
    timers = sorted(
        [*(ctx.client.samples if ctx.client else []), *(ctx.server.samples if ctx.server else [])],
        key=lambda s: s.t_s,
    )
    prediction, count = NO_PREDICTION, 0
    if error is None:
        try:
            prediction = case.prediction(ctx, packets, hz)
            count = case.counted(ctx, packets)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
    death = ctx.death
    return CaseResult(
        name=case.name,
        description=case.description,
        params={**effective, **{k: v for k, v in params.items() if k not in SYSCTLS}},
        died_at_s=round(death.t_s, 3) if death else None,
        errno=death.errno if death else None,
        died_socket=death.socket if death else None,
        count=count,
        duration_s=round(duration, 3),
        packets=packets,
        timers=timers,
        events=ctx.events,
        prediction=prediction,
        death_ok=error is None and _death_ok(death, prediction),
        count_ok=error is None and count == prediction.count,
        notes=[f"kernel {kernel.release()}, HZ={hz or 'unknown'}", f"pair c{pair.name}/s{pair.name}"],
        error=error,
    )
