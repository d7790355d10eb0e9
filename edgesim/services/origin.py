"""The origin server behind the edges' TCP proxy: echoes lines back, and sends bulk data on request.

Run inside a host node by the lab supervisor: `python -m edgesim.services.origin --listen 100.64.0.7:9000`.
One command per line:

    send N [after MS]   send N bytes (after MS milliseconds), as fast as the connection takes them
    anything else       echoed back
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from edgesim.services.serving import host_port, stop_event

CHUNK = 65536


async def _send(writer: asyncio.StreamWriter, count: int) -> None:
    block = b"x" * CHUNK
    while count > 0:
        piece = block[: min(count, CHUNK)]
        writer.write(piece)
        await writer.drain()  # the proxy's pace: a stalled client backs up to here
        count -= len(piece)


def parse_send(line: bytes) -> tuple[int, float] | None:
    """`send N [after MS]` → (N bytes, delay in s); None for any other line."""
    words = line.split()
    if not words or words[0] != b"send" or len(words) not in (2, 4):
        return None
    if len(words) == 4 and words[2] != b"after":
        return None
    try:
        return int(words[1]), (int(words[3]) / 1000 if len(words) == 4 else 0.0)
    except ValueError:
        return None


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one connection until the peer closes it or it breaks."""
    try:
        while line := await reader.readline():
            command = parse_send(line)
            if command is None:
                writer.write(line)
                await writer.drain()
                continue
            count, delay = command
            await asyncio.sleep(delay)
            await _send(writer, count)
    except OSError:
        pass  # reset or timed out: nothing to answer
    finally:
        writer.close()


async def serve(listens: list[str]) -> None:
    """Listen on every address until SIGTERM/SIGINT."""
    stop = stop_event()
    servers = [
        await asyncio.start_server(handle, *host_port(listen), reuse_address=True) for listen in listens
    ]
    print(f"origin: serving on {', '.join(listens)}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", action="append", required=True, help="address:port (repeatable)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
