"""One PNG per case: the packets each end sent, and each socket's timer state, against time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesim.experiments.tcp_timeouts.records import CaseResult, TimerSample

TIMER_COLOURS = {
    "on": "tab:orange",
    "keepalive": "tab:purple",
    "persist": "tab:brown",
    "timewait": "tab:gray",
    "off": "whitesmoke",
}
PACKET_STYLES = {  # kind → (marker, colour)
    "syn": ("^", "tab:cyan"),
    "syn-ack": ("v", "tab:cyan"),
    "data": (".", "tab:blue"),
    "ack": ("|", "tab:gray"),
    "retransmit": ("x", "tab:red"),
    "probe": ("o", "tab:purple"),
    "rst": ("*", "black"),
    "fin": ("s", "black"),
}

UNFILLED = ("x", "|", ".")


def plot_case(result: CaseResult, path: str | Path) -> Path:
    """Draw one case to `path` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 4.6), gridspec_kw={"height_ratios": [3, 2]}, constrained_layout=True
    )
    _draw_packets(top, result)
    for axis in (top, bottom):
        _draw_marks(axis, result)
    top.legend(loc="upper left", fontsize=7, ncols=4, frameon=False)
    top.set_title(_title(result), fontsize=9)
    end = max([result.duration_s, *(p.t_s for p in result.packets), *(s.t_s for s in result.timers)]) + 0.2
    _draw_timers(bottom, result, end)
    handles = [
        matplotlib.patches.Patch(color=c, label=f"timer {k}") for k, c in TIMER_COLOURS.items() if k != "off"
    ]
    bottom.legend(handles=handles, loc="upper left", fontsize=7, ncols=4, frameon=False)
    bottom.set_xlim(0, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_packets(top: Any, result: CaseResult) -> None:
    """Packets: client's above the axis, server's below; hollow markers for what the router dropped."""
    seen = set()
    for p in result.packets:
        marker, colour = PACKET_STYLES.get(p.kind, (".", "tab:blue"))
        y = 1 if p.direction == "c>s" else -1
        label = p.kind if p.kind not in seen else None
        seen.add(p.kind)
        if marker in UNFILLED:
            # Line markers have no face: a dropped one is drawn faint instead of hollow.
            top.scatter(
                [p.t_s], [y], marker=marker, s=60, c=colour, alpha=0.45 if p.dropped else 1.0, label=label
            )
        else:
            face = "none" if p.dropped else colour
            top.scatter([p.t_s], [y], marker=marker, s=60, edgecolors=colour, facecolors=face, label=label)
    sends = result.prediction.sends_s
    top.scatter(sends, [0] * len(sends), marker="|", s=200, c="tab:green", label="predicted send")
    top.set_yticks([1, 0, -1], ["client sends", "predicted", "server sends"])
    top.set_ylim(-2, 2)


def _draw_marks(axis: Any, result: CaseResult) -> None:
    """The path cut, the predicted death (window and moment) and the measured death, on one axis."""
    cut = next((e.t_s for e in result.events if e.what == "path cut"), None)
    if cut is not None:
        axis.axvline(cut, color="gray", linestyle="--", linewidth=1)
    pred = result.prediction
    if pred.low_s is not None and pred.high_s is not None:
        axis.axvspan(pred.low_s, pred.high_s, color="tab:green", alpha=0.15)
    if pred.died_at_s is not None:
        axis.axvline(pred.died_at_s, color="tab:green", linestyle=":", linewidth=1.5)
    if result.died_at_s is not None:
        axis.axvline(result.died_at_s, color="tab:red", linewidth=1.5)


def _title(result: CaseResult) -> str:
    """When it died against the prediction, and the count that decides it."""
    pred_text = f"{result.prediction.died_at_s:.2f} s" if result.prediction.died_at_s is not None else "never"
    died_text = f"{result.died_at_s:.2f} s {result.errno or ''}" if result.died_at_s is not None else "alive"
    return (
        f"{result.name}: died {died_text} (predicted {pred_text}); "
        f"{result.prediction.count_kind} {result.count} (predicted {result.prediction.count})"
    )


def _draw_timers(bottom: Any, result: CaseResult, end: float) -> None:
    """Timers: one row per socket, coloured by timer kind, with the retransmission/probe count written in."""
    sockets = sorted({s.socket for s in result.timers})
    for row, name in enumerate(sockets):
        dead = result.died_at_s if result.died_socket == name and result.died_at_s else end
        _draw_timer_row(bottom, row, [s for s in result.timers if s.socket == name], dead, end)
    bottom.set_yticks(range(len(sockets)), sockets)
    bottom.set_ylim(-0.6, max(len(sockets), 1) - 0.4)
    bottom.set_xlabel(
        "seconds since the start of the case  (dashed: path cut · red: died · green: predicted)"
    )


def _draw_timer_row(bottom: Any, row: int, samples: list[TimerSample], dead: float, end: float) -> None:
    """One socket's samples as bars up to the next sample (or its death), counts where they change."""
    last_count = 0
    for sample, following in zip(samples, [*samples[1:], None], strict=True):
        if sample.state == "CLOSED":
            continue
        stop = min(following.t_s if following else end, dead)
        bottom.broken_barh(
            [(sample.t_s, max(stop - sample.t_s, 0.01))],
            (row - 0.35, 0.7),
            facecolors=TIMER_COLOURS.get(sample.timer, "white"),
            edgecolors="white",
        )
        count = sample.probes if sample.timer in ("keepalive", "persist") else sample.retransmits
        if sample.timer != "off" and count != last_count:
            bottom.text(sample.t_s, row, f" {count}", va="center", fontsize=7)
        last_count = count
        if sample.expires_ms is not None:
            bottom.plot(
                [sample.t_s + sample.expires_ms / 1000], [row + 0.42], marker="v", color="black", ms=3
            )
