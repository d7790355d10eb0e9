"""A steady stream of HTTP requests, one new TCP connection each, started at a fixed interval.

Runs inside a lab node: `python -m edgesim.traffic.http_stream --target 203.0.113.100:80 --duration 6`
prints one JSON object with every request's start time (seconds since the stream began), outcome and
latency; failure tests read from it how long errors lasted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class Request:
    """One request of the stream."""

    start: float  # seconds since the stream began
    latency: float
    error: str | None = None


async def _one(host: str, port: int, timeout: float, began: float) -> Request:
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            raw = await asyncio.wait_for(reader.read(), timeout - (time.monotonic() - start))
        finally:
            writer.close()
        if not raw.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"unexpected answer {raw[:40]!r}")
        return Request(start - began, time.monotonic() - start)
    except (TimeoutError, OSError, ValueError) as err:
        return Request(start - began, time.monotonic() - start, f"{type(err).__name__}: {err}")


async def _stream(host: str, port: int, duration: float, interval: float, timeout: float) -> list[Request]:
    began = time.monotonic()
    tasks = []
    while time.monotonic() - began < duration:
        tasks.append(asyncio.create_task(_one(host, port, timeout, began)))
        await asyncio.sleep(interval)
    return list(await asyncio.gather(*tasks))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the stream and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="address:port")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of requests")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between request starts")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds a request may take")
    args = parser.parse_args(argv)
    host, port = args.target.rsplit(":", 1)
    requests = asyncio.run(_stream(host, int(port), args.duration, args.interval, args.timeout))
    json.dump({"target": args.target, "requests": [asdict(r) for r in requests]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
