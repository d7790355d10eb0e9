"""Legitimate HTTP load: N requests, one TCP connection each, with latency, success and which edge answered.

Runs inside a lab node: `python -m edgesim.traffic.http_probe --target 198.51.100.10:80 --count 1024`
prints one JSON object; `probe_from_node` does that through the lab and returns the parsed results.
With `hold` (the default) every connection stays open until the run ends, so no source port is used
twice in one run; without it, connections close as they finish (a steady load of new connections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

from edgesim import lab as lab_api
from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.traffic.targets import check_design_range, check_endpoint


@dataclass
class Fetch:
    """One connection's outcome."""

    source_port: int | None
    edge: str | None
    latency_ms: float
    error: str | None = None


@dataclass
class ProbeReport:
    """All connections of one probe run."""

    target: str
    fetches: list[Fetch]

    @property
    def ok(self) -> list[Fetch]:
        """The fetches that got an answer."""
        return [f for f in self.fetches if f.error is None]

    def per_edge(self) -> Counter[str]:
        """How many connections each edge served."""
        return Counter(f.edge for f in self.ok if f.edge)

    @property
    def success_rate(self) -> float:
        """Share of requests answered (1.0 when there were none)."""
        return len(self.ok) / len(self.fetches) if self.fetches else 1.0

    def latency_ms(self, quantile: float) -> float:
        """Latency quantile (0-1) of the successful requests, in ms."""
        values = sorted(f.latency_ms for f in self.ok)
        if not values:
            return float("nan")  # summary() says "n/a"
        return values[min(len(values) - 1, int(quantile * len(values)))]

    def summary(self) -> str:
        """One line: count, success, p50/p99 latency, spread over edges."""
        edges = ", ".join(f"{edge} {n}" for edge, n in sorted(self.per_edge().items()))
        if not self.ok:
            return (
                f"{len(self.fetches)} requests, {self.success_rate:.2%} ok, p50 n/a, p99 n/a; served by none"
            )
        return (
            f"{len(self.fetches)} requests, {self.success_rate:.2%} ok, p50 {self.latency_ms(0.5):.1f} ms, "
            f"p99 {self.latency_ms(0.99):.1f} ms; served by {edges or 'none'}"
        )


async def _fetch(host: str, port: int, timeout: float, keep: list[asyncio.StreamWriter] | None) -> Fetch:
    started = time.perf_counter()
    source_port = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        source_port = writer.get_extra_info("sockname")[1]
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout)
        if keep is None:
            writer.close()
        else:
            # Closed only when the whole run is over, so no source port is reused within one run.
            keep.append(writer)
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"unexpected answer {head[:40]!r}")
        edge = body.decode().strip()
        return Fetch(source_port, edge, (time.perf_counter() - started) * 1000)
    except (TimeoutError, OSError, ValueError) as err:
        return Fetch(
            source_port, None, (time.perf_counter() - started) * 1000, f"{type(err).__name__}: {err}"
        )


async def _probe(
    host: str, port: int, count: int, concurrency: int, timeout: float, hold: bool
) -> list[Fetch]:
    limit = asyncio.Semaphore(concurrency)
    keep: list[asyncio.StreamWriter] = []

    async def one() -> Fetch:
        async with limit:
            return await _fetch(host, port, timeout, keep if hold else None)

    fetches = list(await asyncio.gather(*(one() for _ in range(count))))
    for writer in keep:
        writer.close()
    return fetches


def probe(
    target: str, count: int, concurrency: int = 128, timeout: float = 5.0, hold: bool = True
) -> ProbeReport:
    """Run the probe from the current network namespace."""
    host, port = target.rsplit(":", 1)
    return ProbeReport(target, asyncio.run(_probe(host, int(port), count, concurrency, timeout, hold)))


def probe_from_node(
    lab: str,
    node: str,
    target: str,
    count: int,
    concurrency: int = 128,
    hold: bool = True,
    timeout: float = 5.0,
) -> ProbeReport:
    """Run the probe inside a lab node and return its report (the target must be the lab's own)."""
    if count < 1 or concurrency < 1:
        raise EdgesimError(Problem("count", "a probe needs at least one request at a time", "e.g. 1000, 32"))
    check_endpoint(runtime.running_plan(lab), target, "target")
    argv = [sys.executable, "-m", __name__, "--target", target, "--count", str(count)]
    argv += ["--concurrency", str(concurrency), "--timeout", str(timeout)]
    if not hold:
        argv.append("--no-hold")
    result = lab_api.exec_in(lab, node, argv, capture_output=True, text=True, check=False)
    if result.returncode:
        raise EdgesimError(f"probe in {node} failed: {result.stderr.strip()[-400:]}")
    data = json.loads(result.stdout)
    return ProbeReport(data["target"], [Fetch(**f) for f in data["fetches"]])


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the probe report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="address:port")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--no-hold", action="store_true", help="close each connection as soon as it is done")
    args = parser.parse_args(argv)
    try:
        check_design_range(args.target)
    except EdgesimError as err:
        parser.error(str(err))
    report = probe(args.target, args.count, args.concurrency, args.timeout, hold=not args.no_hold)
    json.dump({"target": report.target, "fetches": [asdict(f) for f in report.fetches]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
