"""`invoke experiment …`: experiments that bring up a lab of their own, measure, report and tear it down."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from edgesim.errors import EdgesimError
from edgesim.taskutil import console, need_root, out, user_errors

DEFAULT_PLOTS = "out/tcp-timeouts"


HELP = {
    "case": "run only this case (repeatable); `--list` shows them",
    "param": "override a parameter, key=value (repeatable), e.g. tcp_retries2=3 or TCP_USER_TIMEOUT=5000",
    "json": "write the results (a list of cases) to this JSON file",
    "plots": f"directory for one PNG per case (default {DEFAULT_PLOTS}; '' for none)",
    "lab": "name of the lab the experiment brings up and tears down (default tcplab)",
    "list": "list the cases and their parameters, run nothing",
    "post": "run the cases of the post the lab comes from, with its figures next to this kernel's "
    "(the longest, a busy connection under the default tcp_retries2, takes about 16 minutes)",
    "timeline": "print the timeline of every case (default: only of cases that disagree with the prediction)",
}


@task(iterable=["case", "param"], help=HELP)
@user_errors
def tcp_timeouts(
    c: Context,
    case: list[str] | None = None,
    param: list[str] | None = None,
    json: str | None = None,
    plots: str = DEFAULT_PLOTS,
    lab: str = "tcplab",
    list: bool = False,
    timeline: bool = False,
    post: bool = False,
) -> None:
    """Measure when TCP sockets die (SYN, SYN-RECV, keepalive, user timeout, RTO, zero window)."""
    from edgesim.experiments.tcp_timeouts import params as params_module
    from edgesim.experiments.tcp_timeouts import plot, report, runner
    from edgesim.experiments.tcp_timeouts.post import POST_CASES_BY_NAME

    if post and not case:
        case = [*POST_CASES_BY_NAME]
    overrides = params_module.parse_overrides(param or [])
    if list:
        _print_cases(runner.select(case or None), overrides)
        return
    need_root("experiment tcp-timeouts")
    results = runner.run(
        case or None,
        overrides,
        lab=lab,
        console=console,
        on_result=lambda r: console.print(
            f"{'[green]✓' if r.ok else '[red]✗'}[/] {r.name} ({r.duration_s:.1f} s)", highlight=False
        ),
    )
    for result in results:
        if timeline or not result.ok:
            out.print(report.timeline(result))
    out.print(report.summary(results))
    if any(r.name in POST_CASES_BY_NAME for r in results):
        out.print(report.against_post(results))
    if json:
        report.write_json(results, json)
        console.print(f"wrote {json}")
    if plots:
        for result in results:
            plot.plot_case(result, Path(plots) / f"{result.name}.png")
        console.print(f"plots in {plots}/")
    if not all(r.ok for r in results):
        raise Exit(code=1)


def _print_cases(cases: list, overrides: dict) -> None:
    from rich.table import Table

    from edgesim.experiments.tcp_timeouts import runner

    params = runner.case_params(cases, overrides)
    table = Table(title="TCP timeout cases (sysctls not listed keep the kernel's defaults)")
    for column in ("case", "what", "parameters"):
        table.add_column(column)
    for item in cases:
        table.add_row(item.name, item.description, " ".join(f"{k}={v}" for k, v in params[item.name].items()))
    out.print(table)


EXPERIMENTS = {"tcp-timeouts": tcp_timeouts}


@user_errors
def _run_by_name(c: Context, name: str, **options: Any) -> None:
    """Run an experiment by name: `invoke experiment tcp-timeouts [--case NAME] [--param k=v …]`."""
    if name not in EXPERIMENTS:
        raise EdgesimError(
            f"no experiment {name!r}",
            hint=f"one of {', '.join(EXPERIMENTS)}; e.g. `invoke experiment tcp-timeouts --help`",
        )
    EXPERIMENTS[name](c, **options)


def _with_name(options: inspect.Signature) -> inspect.Signature:
    """An experiment's signature with the experiment's name as the first argument after the context."""
    context, *rest = options.parameters.values()
    name = inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
    return options.replace(parameters=[context, name, *rest])


# invoke reads `invoke experiment tcp-timeouts` as the collection's default task with a positional argument,
# so both that spelling (the documented one) and `invoke experiment.tcp-timeouts` work. It takes the options
# of the experiments (one signature, theirs), which invoke reads from __signature__.
_run_by_name.__signature__ = _with_name(inspect.signature(tcp_timeouts))  # type: ignore[attr-defined]
run = task(
    name="run",
    positional=["name"],
    iterable=["case", "param"],
    help={"name": "the experiment: tcp-timeouts", **HELP},
)(_run_by_name)


ns = Collection(tcp_timeouts)
ns.add_task(run, default=True)
