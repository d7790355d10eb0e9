"""Case parameters: the sysctls, socket options and knobs a case uses, validated; `--param k=v` parsing."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, Field, ValidationError, create_model

from edgesim.errors import EdgesimError, Problem

Value = int | float


@dataclass(frozen=True)
class Spec:
    """One parameter: its bounds and what it means."""

    low: Value
    high: Value
    help: str
    kind: type = int


# Per-namespace sysctls (net.ipv4.*), written on both nodes of the pair for the case; every case accepts them.
SYSCTLS: dict[str, Spec] = {
    "tcp_syn_retries": Spec(1, 127, "SYN retransmissions budget of connect()"),
    "tcp_synack_retries": Spec(1, 255, "SYN-ACK retransmissions of a request socket (SYN-RECV)"),
    "tcp_syn_linear_timeouts": Spec(0, 127, "first SYN retries 1 s apart instead of doubling (6.5+)"),
    "tcp_retries2": Spec(0, 255, "RTO budget with data in flight; also the zero-window probe limit"),
    "tcp_keepalive_time": Spec(1, 32767, "keepalive idle time (s) when TCP_KEEPIDLE is not set"),
    "tcp_keepalive_intvl": Spec(1, 32767, "keepalive probe interval (s) when TCP_KEEPINTVL is not set"),
    "tcp_keepalive_probes": Spec(1, 127, "keepalive probes when TCP_KEEPCNT is not set"),
    "tcp_early_retrans": Spec(0, 4, "3 or 4: tail loss probes (TLP) on; 0: off"),
    "tcp_rto_max_ms": Spec(1000, 120000, "the RTO ceiling (6.15+)"),
}
# Socket options (and the socket they go on) and experiment knobs; a case accepts those it has defaults for.
OPTIONS: dict[str, Spec] = {
    "TCP_SYNCNT": Spec(0, 127, "client: SYN retries for this socket (0: use the sysctl)"),
    "TCP_USER_TIMEOUT": Spec(0, 600000, "client: ms data may stay unacknowledged (0: off)"),
    "SO_KEEPALIVE": Spec(0, 1, "client: keepalive probes on"),
    "TCP_KEEPIDLE": Spec(1, 32767, "client: idle seconds before the first keepalive probe"),
    "TCP_KEEPINTVL": Spec(1, 32767, "client: seconds between keepalive probes"),
    "TCP_KEEPCNT": Spec(1, 127, "client: unanswered probes before the connection is dropped"),
    "TCP_DEFER_ACCEPT": Spec(0, 3600, "listener: seconds to wait for data after the handshake (0: off)"),
    "SO_RCVBUF": Spec(2048, 1 << 20, "server: receive buffer, small for a zero window"),
    "SO_SNDBUF": Spec(4096, 1 << 20, "client: send buffer"),
    "observe_s": Spec(1, 30, "how long to watch a connection that is not expected to die", float),
    "cut": Spec(0, 1, "1: cut the path when the window closes; 0: leave it up"),
    "payload": Spec(1, 65536, "bytes the client sends into the cut path"),
}
ALL = {**SYSCTLS, **OPTIONS}


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Value]:
    """`["tcp_retries2=4", …]` → {"tcp_retries2": 4}; every malformed or unknown item is reported at once."""
    overrides: dict[str, Value] = {}
    problems = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem(f"--param {item}", "is not of the form key=value", "e.g. tcp_retries2=4"))
            continue
        spec = ALL.get(key)
        if spec is None:
            problems.append(
                Problem(
                    f"--param {key}", "unknown parameter", f"known: {', '.join(sorted(ALL, key=str.lower))}"
                )
            )
            continue
        try:
            overrides[key] = spec.kind(raw.strip())
        except ValueError:
            kind = "a whole number" if spec.kind is int else "a number"
            problems.append(Problem(f"--param {key}", f"{raw.strip()!r} is not {kind}", spec.help))
    if problems:
        raise EdgesimError(problems)
    return overrides


def resolve(
    case: str, defaults: dict[str, Value], overrides: dict[str, Value], available: set[str]
) -> dict[str, Value]:
    """A case's parameters: its defaults with the overrides that apply to it, validated against the bounds.

    `available` names the sysctls this kernel has; setting one it lacks is an error.
    """
    accepted = {key: ALL[key] for key in (*SYSCTLS, *defaults)}
    model = create_model(  # type: ignore[call-overload]
        f"Params_{case.replace('-', '_')}",
        __config__=ConfigDict(extra="forbid"),
        **{
            key: (
                spec.kind | None,
                Field(defaults.get(key), ge=spec.low, le=spec.high, description=spec.help),
            )
            for key, spec in accepted.items()
        },
    )
    wanted = {key: value for key, value in overrides.items() if key in accepted}
    problems = [
        Problem(f"--param {key}", f"this kernel has no net.ipv4.{key}", "leave it out on this kernel")
        for key in wanted
        if key in SYSCTLS and key not in available
    ]
    try:
        validated = model.model_validate({**defaults, **wanted})
    except ValidationError as err:
        problems += [
            Problem(f"--param {e['loc'][0]}", f"{e['msg'][0].lower()}{e['msg'][1:]} for case {case}")
            for e in err.errors()
        ]
    if problems:
        raise EdgesimError(problems)
    return {key: value for key, value in validated.model_dump().items() if value is not None}


def unused(overrides: dict[str, Value], cases: dict[str, dict[str, Value]]) -> list[str]:
    """Overrides that no selected case accepts (a typo in a case name, or an option of another case)."""
    return [
        key
        for key in overrides
        if key not in SYSCTLS and not any(key in defaults for defaults in cases.values())
    ]
