"""Long-lived HTTP/1.1 keep-alive connections: each sends a request every INTERVAL for the whole run.

Runs inside a lab node: `python -m edgesim.traffic.long_lived --target 198.51.100.10:80 --connections 500
--interval 2 --duration 40`. It opens every connection, prints `ready` on stdout once each has had an
answer, keeps them talking and at the end closes them (FIN) and prints one JSON report: per connection,
which edge answered, the wall-clock time of every answered request, and the error (reset, stalled,
closed) that ended it early.
`LongLived` runs it through the lab and parses the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field

from edgesim import namespaces
from edgesim.errors import EdgesimError
from edgesim.traffic.targets import check_design_range

REQUEST = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"


@dataclass
class Conn:
    """One connection's life: who answered, when, and what ended it."""

    source_port: int | None = None
    edges: list[str] = field(default_factory=list)  # distinct edges that answered (one, unless broken)
    answered: list[float] = field(default_factory=list)  # time.time() of each answer
    error: str | None = None

    def answered_between(self, start: float, end: float) -> int:
        """How many requests were answered in [start, end)."""
        return sum(start <= t < end for t in self.answered)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> str:
    writer.write(REQUEST)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    await asyncio.wait_for(reader.readexactly(int(headers.get("Content-Length", "0"))), timeout)
    return headers.get("X-Edge", "?")


async def _connection(
    conn: Conn, host: str, port: int, opened: asyncio.Semaphore, ready: list[int], args: argparse.Namespace
) -> None:
    try:
        async with opened:  # a bounded burst of handshakes
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), args.timeout)
        conn.source_port = writer.get_extra_info("sockname")[1]
    except (OSError, TimeoutError) as err:
        conn.error = f"connect: {type(err).__name__}"
        ready[0] += 1
        return
    deadline = args.started + args.duration
    first = True
    try:
        while time.monotonic() < deadline:
            edge = await _request(reader, writer, args.timeout)
            conn.answered.append(time.time())
            if edge not in conn.edges:
                conn.edges.append(edge)
            if first:
                # Ready once it has exchanged data: an open connection whose client has received nothing
                # yet still looks like a handshake in progress to the other edges (see the README).
                ready[0] += 1
                first = False
            await asyncio.sleep(args.interval)
        writer.close()
        await writer.wait_closed()
    except TimeoutError:
        conn.error = "stalled"
        ready[0] += first
    except ConnectionResetError:
        conn.error = "reset"
        ready[0] += first
    except (asyncio.IncompleteReadError, OSError) as err:
        conn.error = f"closed: {type(err).__name__}"
        ready[0] += first
    finally:
        writer.close()


async def _run(args: argparse.Namespace) -> list[Conn]:
    host, port = args.target.rsplit(":", 1)
    conns = [Conn() for _ in range(args.connections)]
    ready = [0]
    opened = asyncio.Semaphore(64)
    args.started = time.monotonic()
    tasks = [asyncio.create_task(_connection(c, host, int(port), opened, ready, args)) for c in conns]
    while ready[0] < len(conns):
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    return conns


def main(argv: list[str] | None = None) -> int:
    """Entry point: print `ready` once every connection is open, then the report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="VIP:port")
    parser.add_argument("--connections", type=int, default=500, help="connections to keep open")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between requests per connection")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds from start to closing them")
    parser.add_argument("--timeout", type=float, default=5.0, help="an answer later than this is a stall")
    args = parser.parse_args(argv)
    try:
        check_design_range(args.target)  # never aimed outside the lab's address ranges
    except EdgesimError as err:
        parser.error(str(err))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.connections + 256)), hard))
    conns = asyncio.run(_run(args))
    print(json.dumps([c.__dict__ for c in conns]), flush=True)
    return 0


class LongLived:
    """A running long_lived client inside a lab node."""

    def __init__(self, netns: str, target: str, connections: int, interval: float, duration: float) -> None:
        argv = [sys.executable, "-m", __name__, "--target", target, "--connections", str(connections)]
        argv += ["--interval", str(interval), "--duration", str(duration)]
        self.process = namespaces.popen_in(netns, argv, stdout=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once every connection is open (or failed to open)."""
        line = self.process.stdout.readline() if self.process.stdout else ""
        if line.strip() != "ready":
            self.process.kill()
            raise EdgesimError(f"long-lived client did not get ready: {line!r}")

    def report(self, timeout: float = 120.0) -> list[Conn]:
        """Wait for the run to end and return every connection's record."""
        out, _ = self.process.communicate(timeout=timeout)
        return [Conn(**c) for c in json.loads(out)]

    def kill(self) -> None:
        """Stop the client now (a test that failed half-way)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
