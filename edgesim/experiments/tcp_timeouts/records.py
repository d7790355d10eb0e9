"""The records an experiment produces: packets, timer samples, application events, predictions, case results.

These models are the JSON format of `invoke experiment tcp-timeouts --json`: a list of CaseResult.
All times are seconds relative to the start of the case.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["c>s", "s>c"]


class Record(BaseModel):
    """Base of every record: no unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Packet(Record):
    """One TCP segment of the case's connection, as the router saw it arrive."""

    t_s: float
    direction: Direction = Field(description="c>s: sent by the client, s>c: sent by the server")
    flags: str = Field(description="TCP flags as tcpdump writes them: S, SA, A, PA, FA, R, RA")
    length: int = Field(description="TCP payload bytes")
    seq: int
    ack: int
    window: int
    kind: str = Field(
        description="syn, syn-ack, data, ack, retransmit, probe (keepalive or zero-window), fin, rst"
    )
    dropped: bool = Field(description="the router dropped it (it never left towards the peer)")


class TimerSample(Record):
    """A socket's kernel state as sock_diag reported it; one entry each time something changed."""

    t_s: float
    socket: str = Field(description="client, server or listener")
    state: str = Field(description="TCP state (SYN-RECV for a request socket); CLOSED once it is gone")
    timer: str = Field(description="off, on (retransmission), keepalive, timewait or persist (zero window)")
    expires_ms: int | None
    retransmits: int = Field(description="icsk_retransmits (a request socket: SYN-ACK retransmissions)")
    probes: int = Field(description="icsk_probes_out: unanswered keepalive or zero-window probes")
    backoff: int | None = None
    rto_ms: float | None = None


class AppEvent(Record):
    """Something the application saw: connect/accept/recv/send results, errors with their errno."""

    t_s: float
    side: Literal["client", "server", "experiment"]
    what: str
    errno: str | None = None


class Prediction(Record):
    """What the kernel's algorithm predicts for the case's parameters, and how close a measurement must be."""

    died_at_s: float | None
    low_s: float | None = Field(description="earliest acceptable death (timers never fire early)")
    high_s: float | None = Field(description="latest acceptable death: timer-wheel granules + scheduling")
    errno: str | None
    count: int = Field(description="packets of `count_kind` the dying socket sends")
    count_kind: str
    sends_s: list[float] = Field(description="when each of those packets should go out")
    basis: str = Field(description="the algorithm and the measured inputs the prediction uses")


class CaseResult(Record):
    """One case: parameters, what happened, what was predicted, and whether they agree."""

    name: str
    description: str
    params: dict[str, int | float] = Field(description="every socket option, sysctl and knob of the case")
    died_at_s: float | None = Field(description="when the application saw the socket die; null: it did not")
    errno: str | None
    died_socket: str | None = Field(description="which socket died (client, server)")
    count: int = Field(description="measured packets of the predicted kind (from the capture)")
    duration_s: float
    packets: list[Packet]
    timers: list[TimerSample]
    events: list[AppEvent]
    prediction: Prediction
    death_ok: bool
    count_ok: bool
    notes: list[str] = Field(default_factory=list)
    error: str | None = Field(None, description="the case could not run (the reason)")

    @property
    def ok(self) -> bool:
        """Death time, errno and packet count all as predicted."""
        return self.error is None and self.death_ok and self.count_ok
