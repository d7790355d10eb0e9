"""An edge's authoritative DNS service: one UDP socket on port 53 for every VIP, behind the per-source socket
filter (SO_ATTACH_BPF), with a control socket for the limit and the counters. Runs inside the edge:

    python -m edgesim.dns.server --name edge1 --zone pop.example --serve 198.51.100.10 \
        --record www=198.51.100.10 --rate 20 --burst 40 --limit-file dns-limit.json --socket dns-edge1.sock
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgesim.bpf import loader
from edgesim.dns import filtermaps
from edgesim.dns import metrics as dns_metrics
from edgesim.dns.section import DnsLimit
from edgesim.dns.zone import Zone
from edgesim.errors import EdgesimError
from edgesim.metrics import exporter

PROGRAM = Path("sock_filter.c")
ENTRY = "dns_filter"
PORT = 53
# linux/in.h; Python's socket module does not name it before 3.13.
IP_PKTINFO = 8
# Room for one in_pktinfo control message (ifindex, spec_dst, addr: 12 bytes) and then some.
_CMSG_SPACE = socket.CMSG_SPACE(12)
_MAX_QUERY = 4096
# How long the serving loop blocks before it looks at the stop flag.
_POLL_S = 0.5
# asm-generic/socket.h; Python's socket module does not name it. FORCE: past net.core.rmem_max (as root).
SO_RCVBUFFORCE = 33
# The socket's receive buffer. The default (rmem_default, 208 KiB) holds a few hundred datagrams at their
# truesize: the burst the filter lets through when a flood starts (each source's bucket is full) overflowed
# it, and a client's query that arrived in that moment was dropped with the flood's. Authoritative servers
# set large buffers for the same reason (BIND's and unbound's so-rcvbuf).
RECEIVE_BUFFER = 8 * 1024 * 1024
# What `stats` lists when not asked for a number of top sources.
DEFAULT_TOP = 10


def read_limit(path: Path, default: DnsLimit) -> DnsLimit:
    """The limit set at run time (`dns limit`), or the planned one while none was set."""
    if not path.exists():
        return default
    try:
        return DnsLimit.model_validate_json(path.read_text())
    except ValidationError as err:
        raise EdgesimError(f"{path}: not a DNS limit: {err.errors()[0]['msg']}") from None


def socket_drops(sock: socket.socket) -> int:
    """What the kernel dropped at this socket (/proc/net/udp's drops: the filter's and the full buffer's)."""
    inode = os.fstat(sock.fileno()).st_ino
    # /proc/self/net is the netns of this process: the edge's.
    for line in Path("/proc/self/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[9]) == inode:
            return int(fields[-1])
    return 0


class DnsServer:
    """The socket, its filter and the zone; `serve` answers until stopped."""

    def __init__(self, zone: Zone, serves: list[str], limit_file: Path, default: DnsLimit):
        self.zone = zone
        self.serves = {socket.inet_aton(address) for address in serves}
        self.limit_file = limit_file
        self.default = default
        self.bpf = loader.compile_program(PROGRAM)
        self.prog_fd = loader.load_socket_filter(self.bpf, ENTRY)
        self.limit = read_limit(limit_file, default)
        filtermaps.set_limit(self.bpf, self.limit)
        self.queries: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        # One socket for every service address: the destination of each query says which VIP it was for,
        # and the reply leaves from that VIP.
        self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        # The filter first, so that no datagram is ever queued unfiltered.
        loader.attach_socket_filter(self.sock, self.prog_fd)
        self.sock.bind(("0.0.0.0", PORT))
        self.sock.settimeout(_POLL_S)

    def serve(self, stop: threading.Event) -> None:
        """Answer queries for the served addresses until `stop` is set."""
        while not stop.is_set():
            try:
                data, ancillary, _flags, peer = self.sock.recvmsg(_MAX_QUERY, _CMSG_SPACE)
            except TimeoutError:
                continue
            self.handle(data, ancillary, peer)

    def handle(self, data: bytes, ancillary: list[tuple[int, int, bytes]], peer: tuple[str, int]) -> None:
        """Answer one datagram from the VIP it was sent to; ignore it when it is for another address."""
        info = next((d for level, kind, d in ancillary if kind == IP_PKTINFO), None)
        destination = info[8:12] if info else b""
        if destination not in self.serves:
            self.queries["ignored"] += 1
            return
        reply = self.zone.answer(data)
        if reply is None:
            self.queries["malformed"] += 1
            return
        pktinfo = struct.pack("@i4s4s", 0, destination, b"\0" * 4)
        try:
            self.sock.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, peer)
        except OSError:
            self.queries["send-failed"] += 1  # e.g. a spoofed source the edge has no route back to
            return
        self.queries["answered"] += 1

    def reload(self) -> dict[str, Any]:
        """Read the limit file again and put its limit in force."""
        with self.lock:
            self.limit = read_limit(self.limit_file, self.default)
            filtermaps.set_limit(self.bpf, self.limit)
            return {"limit": self.limit.model_dump()}

    def stats(self, top: int = DEFAULT_TOP) -> dict[str, Any]:
        """The filter's counters (in all, and the top sources), the queries answered, the socket's drops."""
        sources = filtermaps.source_counters(self.bpf)
        # The filter counts a drop before the kernel does: reading it first keeps the difference honest.
        totals = filtermaps.totals(self.bpf)
        dropped = socket_drops(self.sock)
        return {
            "limit": self.limit.model_dump(),
            "filter": totals,
            "tracked": len(sources),
            "top": [vars(s) for s in filtermaps.top_sources(sources, top)],
            "queries": dict(self.queries),
            # The kernel counts a datagram the filter refused as a drop of the socket too: the rest is what
            # found the receive buffer full.
            "rx_drops": max(0, dropped - totals["dropped"]),
        }

    def close(self) -> None:
        """Close the socket (its filter goes with it)."""
        self.sock.close()


def serve_control(server: DnsServer, path: Path) -> socketserver.UnixStreamServer:
    """A unix-socket server answering one JSON request per connection: reload, stats."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline())
                if request["op"] == "reload":
                    answer: dict[str, Any] = {"ok": True, **server.reload()}
                elif request["op"] == "stats":
                    answer = {"ok": True, **server.stats(int(request.get("top", DEFAULT_TOP)))}
                else:
                    answer = {"ok": False, "error": f"unknown op {request['op']!r}"}
            except (KeyError, ValueError, TypeError) as err:
                answer = {"ok": False, "error": f"bad request: {err}"}
            except EdgesimError as err:
                answer = {"ok": False, "error": str(err)}
            self.wfile.write(json.dumps(answer).encode() + b"\n")

    path.unlink(missing_ok=True)
    control = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    control.daemon_threads = True
    return control


def _records(values: list[str]) -> dict[str, str]:
    pairs = [value.split("=", 1) for value in values]
    return {label: address for label, address in pairs}


def main(argv: list[str] | None = None) -> int:
    """Bind, attach the filter, answer until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the edge's name (for the log)")
    parser.add_argument("--zone", required=True, help="the zone served, e.g. pop.example")
    parser.add_argument("--serve", action="append", default=[], help="a destination address answered")
    parser.add_argument("--record", action="append", default=[], help="an A record, label=address")
    parser.add_argument("--rate", type=int, required=True, help="queries per second per source")
    parser.add_argument("--burst", type=int, required=True, help="queries a source may send at once")
    parser.add_argument("--count-only", action="store_true", help="count sources, drop nothing")
    parser.add_argument("--limit-file", type=Path, required=True, help="the limit set at run time (JSON)")
    parser.add_argument("--socket", type=Path, required=True, help="control socket path")
    parser.add_argument("--metrics", help="address:port to serve Prometheus /metrics on")
    args = parser.parse_args(argv)
    try:
        default = DnsLimit(rate=args.rate, burst=args.burst, enabled=not args.count_only)
        server = DnsServer(Zone(args.zone, _records(args.record)), args.serve, args.limit_file, default)
    except (EdgesimError, ValidationError, OSError) as err:
        print(f"dns: {err}", file=sys.stderr, flush=True)
        return 1
    control = serve_control(server, args.socket)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=control.serve_forever, daemon=True).start()
    if args.metrics:
        exporter.serve(args.metrics, [dns_metrics.source(server.stats)])
    limit = server.limit
    print(
        f"dns {args.name}: {args.zone} on udp/{PORT} for {', '.join(args.serve)}; socket filter "
        f"{limit.rate}/s burst {limit.burst} per source{'' if limit.enabled else ' (counting only)'}",
        flush=True,
    )
    server.serve(stop)
    control.shutdown()
    args.socket.unlink(missing_ok=True)
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
