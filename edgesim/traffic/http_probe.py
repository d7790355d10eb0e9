"""Make N HTTP requests, one TCP connection each, and record which edge answered, the source port and latency.

Runs inside a lab node: `python -m edgesim.traffic.http_probe --target 198.51.100.10:80 --count 1024`
prints one JSON object; `probe_from_node` does that through the lab and returns the parsed results.
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
from edgesim.errors import EdgesimError


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


async def _fetch(host: str, port: int, timeout: float, keep: list[asyncio.StreamWriter]) -> Fetch:
    started = time.perf_counter()
    source_port = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        source_port = writer.get_extra_info("sockname")[1]
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout)
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


async def _probe(host: str, port: int, count: int, concurrency: int, timeout: float) -> list[Fetch]:
    limit = asyncio.Semaphore(concurrency)
    keep: list[asyncio.StreamWriter] = []

    async def one() -> Fetch:
        async with limit:
            return await _fetch(host, port, timeout, keep)

    fetches = list(await asyncio.gather(*(one() for _ in range(count))))
    for writer in keep:
        writer.close()
    return fetches


def probe(target: str, count: int, concurrency: int = 128, timeout: float = 5.0) -> ProbeReport:
    """Run the probe from the current network namespace."""
    host, port = target.rsplit(":", 1)
    return ProbeReport(target, asyncio.run(_probe(host, int(port), count, concurrency, timeout)))


def probe_from_node(lab: str, node: str, target: str, count: int, concurrency: int = 128) -> ProbeReport:
    """Run the probe inside a lab node and return its report."""
    argv = [
        sys.executable,
        "-m",
        __name__,
        "--target",
        target,
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
    ]
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
    args = parser.parse_args(argv)
    report = probe(args.target, args.count, args.concurrency, args.timeout)
    json.dump({"target": report.target, "fetches": [asdict(f) for f in report.fetches]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
