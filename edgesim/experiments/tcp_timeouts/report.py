"""Reports of a run: a rich timeline per case (packets interleaved with timer states and what the app saw),
the results table (predicted against measured), and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table
from rich.text import Text

from edgesim.experiments.tcp_timeouts.post import POST_CASES_BY_NAME, POST_KERNEL, POST_URL, PostFigure
from edgesim.experiments.tcp_timeouts.records import AppEvent, CaseResult, Packet, TimerSample

COLLAPSE_KINDS = ("data", "ack")
COLLAPSE_RUN = 4  # runs of this many ordinary segments or more are shown as one line


def _packet_text(p: Packet) -> Text:
    arrow = "client → server" if p.direction == "c>s" else "server → client"
    text = Text(f"{arrow}  {p.flags:<3} len {p.length:<5} win {p.window:<6} ")
    style = {"retransmit": "yellow", "probe": "magenta", "rst": "red", "syn": "cyan", "syn-ack": "cyan"}
    text.append(p.kind, style=style.get(p.kind, ""))
    if p.dropped:
        text.append("  ✗ dropped", style="red")
    return text


def _timer_text(s: TimerSample) -> Text:
    if s.state == "CLOSED":
        return Text(f"{s.socket}: socket gone", style="bold red")
    parts = [f"{s.socket}: {s.state}, timer {s.timer}"]
    if s.expires_ms is not None:
        parts.append(f"expires in {s.expires_ms} ms")
    parts.append(f"retrans {s.retransmits}, probes {s.probes}")
    if s.backoff is not None:
        parts.append(f"backoff {s.backoff}")
    return Text(", ".join(parts), style="dim")


def _event_text(e: AppEvent) -> Text:
    if e.side == "experiment":
        return Text(f"— {e.what} —", style="bold blue")
    suffix = f" → {e.errno}" if e.errno else ""
    return Text(f"{e.side} application: {e.what}{suffix}", style="bold")


def timeline(result: CaseResult) -> Table:
    """One case as a table: packets, timer samples and application events in time order."""
    rows: list[tuple[float, int, str, Text]] = []
    packets = result.packets
    i = 0
    while i < len(packets):
        p = packets[i]
        j = i
        while (
            j + 1 < len(packets)
            and p.kind in COLLAPSE_KINDS
            and (packets[j + 1].kind, packets[j + 1].direction, packets[j + 1].dropped)
            == (p.kind, p.direction, p.dropped)
        ):
            j += 1
        if j - i + 1 >= COLLAPSE_RUN:
            text = _packet_text(p)
            text.append(f"  x{j - i + 1} until {packets[j].t_s:.3f} s", style="dim")
            rows.append((p.t_s, 0, "packet", text))
            i = j + 1
            continue
        rows.append((p.t_s, 0, "packet", _packet_text(p)))
        i += 1
    rows += [(s.t_s, 1, "timer", _timer_text(s)) for s in result.timers]
    rows += [(e.t_s, 2, "app", _event_text(e)) for e in result.events]
    pred = result.prediction
    if pred.died_at_s is not None:
        rows.append(
            (
                pred.died_at_s,
                3,
                "predicted",
                Text(
                    f"predicted death ({pred.errno or 'no errno'}), "
                    f"accepted {pred.low_s:.3f} to {pred.high_s:.3f} s",
                    style="green",
                ),
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    table = Table(title=f"{result.name}: {result.description}", title_justify="left", show_edge=False)
    table.add_column("t (s)", justify="right")
    table.add_column("source")
    table.add_column("what")
    for t, _, source, text in rows:
        table.add_row(f"{t:.3f}", source, text)
    return table


def _verdict(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def summary(results: list[CaseResult]) -> Table:
    """The results table: predicted and measured death time, errno and packet count per case."""
    table = Table(title="TCP timeout lab: predicted (kernel algorithm) vs measured")
    for column in (
        "case",
        "predicted death",
        "accepted window",
        "measured death",
        "errno",
        "counted",
        "pred",
        "meas",
        "",
    ):
        table.add_column(column, justify="right" if column in ("pred", "meas") else "left")
    for r in results:
        p = r.prediction
        if r.error:
            table.add_row(r.name, "", "", "", "", "", "", "", f"[red]error: {r.error}[/]")
            continue
        predicted = f"{p.died_at_s:.2f} s" if p.died_at_s is not None else "never"
        window = f"{p.low_s:.2f} - {p.high_s:.2f} s" if p.low_s is not None else "-"
        measured = f"{r.died_at_s:.2f} s" if r.died_at_s is not None else "alive"
        errno = r.errno or ("-" if p.errno is None else "")
        table.add_row(
            r.name,
            predicted,
            window,
            f"{measured} {_verdict(r.death_ok)}",
            errno,
            p.count_kind,
            str(p.count),
            str(r.count),
            _verdict(r.ok),
        )
    return table


def write_json(results: list[CaseResult], path: str | Path) -> None:
    """Write the results as a JSON list of cases."""
    Path(path).write_text(json.dumps([r.model_dump(mode="json") for r in results], indent=2) + "\n")


def against_post(results: list[CaseResult]) -> Table:
    """The post's cases: its published figure (kernel 5.2), the prediction and the measurement here."""
    table = Table(title=f"The post's cases ({POST_URL}): kernel {POST_KERNEL} next to this kernel")
    for column in ("case", "post", "predicted here", "measured here", "why they differ"):
        table.add_column(column)
    for r in results:
        if r.name not in POST_CASES_BY_NAME:
            continue
        _, figure = POST_CASES_BY_NAME[r.name]
        p = r.prediction
        kind = p.count_kind or "packets"
        post = f"{figure.died_s:.2f} s, {figure.packets} {kind}"
        if r.error:
            table.add_row(r.name, post, "", "", f"[red]error: {r.error}[/]")
            continue
        predicted = f"{p.died_at_s:.2f} s, {p.count}" if p.died_at_s is not None else f"never, {p.count}"
        measured = f"{r.died_at_s:.2f} s, {r.count}" if r.died_at_s is not None else f"alive, {r.count}"
        table.add_row(r.name, post, predicted, f"{measured} {_verdict(r.ok)}", difference(r, figure))
    return table


# How far the post's time of death may be from this kernel's and still count as the same (the post's clock
# starts at the SYN, the lab's at the case's start; timers are late by up to a timer-wheel granule).
SAME_DEATH_S = 0.5


def difference(result: CaseResult, figure: PostFigure) -> str:
    """One line on why this kernel differs from the post for a case, or '' when it does not."""
    p = result.prediction
    same_death = p.died_at_s is not None and abs(p.died_at_s - figure.died_s) <= SAME_DEATH_S
    if same_death and p.count == figure.packets:
        return ""
    params = result.params
    linear = int(params.get("tcp_syn_linear_timeouts", 0))
    if result.name == "post-syn-sent" and linear:
        return (
            f"since 6.5 the first {linear} SYN retries are 1 s apart (tcp_syn_linear_timeouts={linear}), "
            f"then the interval doubles; tcp_syn_retries is a time budget (what {figure.packets} doubling "
            f"retries take), so {p.count} retries fit in it where 5.2 sent {figure.packets}"
        )
    if result.name == "post-syn-sent-user-timeout":
        return (
            f"the post saw {figure.packets} SYN retries, 4 of them bunched at the 5 s mark (it calls that a "
            f"bug); here the retries follow the schedule{' (1 s apart, linear timeouts)' if linear else ''} "
            "until the user timeout ends the connect"
        )
    if result.name == "post-busy" and same_death:
        return (
            f"the same death; the count differs only by the first, early retransmission (a tail loss probe), "
            f"which the post leaves out of its {figure.packets} and the lab counts"
        )
    if result.name == "post-keepalive-uto-30":
        return (
            f"the post's socket outlived TCP_KEEPCNT by three probes ({figure.died_s:.0f} s); here the user "
            "timeout ends it at the first keepalive timer past it, counted from the last packet heard"
        )
    return f"this kernel's schedule: {p.basis}"
