"""The "spectrum"-style TCP proxy: one listening socket that sk_lookup hands connections to every port of a
prefix, each relayed to the origin server. Runs inside an edge, under the lab supervisor:

    python -m edgesim.dispatch.spectrum --name edge1 --listen 127.0.0.1:7000 --origin 100.64.0.7:9000

With --transparent its socket takes IP_TRANSPARENT, for an nftables `tproxy` rule to deliver to it instead
(the older way, kept for the benchmark's comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys

from edgesim.services.serving import host_port, stop_event

# linux/in.h; Python's socket module names it only on some platforms.
IP_TRANSPARENT = 19
CHUNK = 65536
BACKLOG = 4096


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until EOF, then half-close the other side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _relay(
    origin: tuple[str, int], client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    """One client connection (to any port of the prefix) relayed to the origin."""
    try:
        origin_r, origin_w = await asyncio.wait_for(asyncio.open_connection(*origin), 5.0)
    except (OSError, TimeoutError):
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, origin_w), _pipe(origin_r, client_w))
    for writer in (client_w, origin_w):
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def listening_socket(listen: str, transparent: bool) -> socket.socket:
    """The proxy's one listening socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if transparent:
        sock.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
    sock.bind(host_port(listen))
    sock.listen(BACKLOG)
    return sock


async def serve(listen: str, origin: str, transparent: bool) -> None:
    """Accept on the one socket and relay every connection until SIGTERM."""
    stop = stop_event()
    target = host_port(origin)
    server = await asyncio.start_server(
        lambda r, w: _relay(target, r, w), sock=listening_socket(listen, transparent)
    )
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the edge's name (for the log)")
    parser.add_argument("--listen", action="append", required=True, help="address:port of the one socket")
    parser.add_argument("--origin", required=True, help="the origin server, address:port")
    parser.add_argument("--transparent", action="store_true", help="IP_TRANSPARENT (for nftables tproxy)")
    args = parser.parse_args(argv)
    print(f"spectrum {args.name}: {args.listen[0]} -> {args.origin}", flush=True)
    asyncio.run(serve(args.listen[0], args.origin, args.transparent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
