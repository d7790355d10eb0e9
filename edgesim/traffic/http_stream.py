"""A steady stream of HTTP requests, one new TCP connection every interval, until SIGTERM.

Runs inside a lab node: `python -m edgesim.traffic.http_stream --target 198.51.100.10:80 --rate 200`; on
SIGTERM it stops starting requests, lets those in flight finish, and prints one JSON object with every
request's start time (CLOCK_MONOTONIC, comparable across processes), outcome and serving edge.
`--protocol echo` sends one line instead and expects it back (the origin behind the edges' TCP proxy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass

from edgesim.errors import EdgesimError
from edgesim.traffic.targets import check_design_range


@dataclass
class Request:
    """One request of the stream."""

    started: float  # time.monotonic() when the connection was opened
    latency_ms: float
    edge: str | None
    error: str | None = None


@dataclass
class StreamReport:
    """Every request of one stream run, in start order."""

    target: str
    requests: list[Request]

    def failed(self) -> list[Request]:
        """The requests that got no answer in time."""
        return [r for r in self.requests if r.error is not None]

    def served_by(self, edge: str, since: float = 0.0, until: float = float("inf")) -> int:
        """How many requests started in [since, until) were served by `edge`."""
        return sum(1 for r in self.requests if r.edge == edge and since <= r.started < until)


ECHO_LINE = b"edgesim stream\n"
# Written to stderr once the first request is on its way: who started the stream waits for it, not a timer
# (starting Python and asyncio took over a second on a loaded machine).
STARTED_LINE = "stream started"


async def _request(host: str, port: int, timeout: float, protocol: str = "http") -> Request:
    started = time.monotonic()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            if protocol == "echo":
                writer.write(ECHO_LINE)
                answer = await reader.readline()
                if answer != ECHO_LINE:
                    raise ValueError(f"unexpected answer {answer[:40]!r}")
                return Request(started, (time.monotonic() - started) * 1000, None)
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            raw = await reader.read()
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"unexpected answer {head[:40]!r}")
        return Request(started, (time.monotonic() - started) * 1000, body.decode().strip())
    except (TimeoutError, OSError, ValueError) as err:
        return Request(started, (time.monotonic() - started) * 1000, None, f"{type(err).__name__}: {err}")
    finally:
        if writer is not None:
            writer.close()


async def _stream(host: str, port: int, interval: float, timeout: float, protocol: str) -> list[Request]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[Request]] = []
    next_at = time.monotonic()
    while not stop.is_set():
        tasks.append(asyncio.create_task(_request(host, port, timeout, protocol)))
        if len(tasks) == 1:
            await asyncio.sleep(0)  # let the first request start before saying so
            print(STARTED_LINE, file=sys.stderr, flush=True)
        # A fixed schedule, not a fixed pause: a slow request must not thin the stream out.
        next_at += interval
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        except TimeoutError:
            pass
    return list(await asyncio.gather(*tasks))


def stream(target: str, rate: float, timeout: float, protocol: str = "http") -> StreamReport:
    """Run the stream from the current network namespace until SIGTERM or SIGINT."""
    host, port = target.rsplit(":", 1)
    return StreamReport(target, asyncio.run(_stream(host, int(port), 1.0 / rate, timeout, protocol)))


def parse(text: str) -> StreamReport:
    """Read the JSON a stream printed."""
    data = json.loads(text)
    return StreamReport(data["target"], [Request(**r) for r in data["requests"]])


def main(argv: list[str] | None = None) -> int:
    """Entry point: stream until SIGTERM, then print the report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="address:port")
    parser.add_argument("--rate", type=float, default=200.0, help="new connections per second")
    parser.add_argument(
        "--timeout", type=float, default=0.8, help="seconds before a request counts as failed"
    )
    parser.add_argument(
        "--protocol", choices=["http", "echo"], default="http", help="GET / (http), or one line echoed back"
    )
    args = parser.parse_args(argv)
    try:
        check_design_range(args.target)  # never aimed outside the lab's address ranges
    except EdgesimError as err:
        parser.error(str(err))
    report = stream(args.target, args.rate, args.timeout, args.protocol)
    json.dump({"target": report.target, "requests": [asdict(r) for r in report.requests]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
