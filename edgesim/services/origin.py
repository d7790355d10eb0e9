"""The origin server behind the edges' TCP proxy: echoes lines back, and sends bulk data on request.

Run inside a host node by the lab supervisor: `python -m edgesim.services.origin --listen 100.64.0.7:9000`.
One command per line:

    send N [after MS]   send N bytes (after MS milliseconds), as fast as the connection takes them
    pattern N           send N bytes of edgesim.services.pattern (checkable: a lost or moved byte shows)
    sink N              read N bytes, then answer `sha256 HEX` of them
    anything else       echoed back
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys

from edgesim.services import pattern
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


async def _pattern(writer: asyncio.StreamWriter, count: int) -> None:
    for block in pattern.blocks(0, count, CHUNK):
        writer.write(block)
        await writer.drain()


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    digest = hashlib.sha256()
    while count > 0:
        data = await reader.read(min(count, CHUNK))
        if not data:
            return  # the peer stopped early: no answer
        digest.update(data)
        count -= len(data)
    writer.write(f"sha256 {digest.hexdigest()}\n".encode())
    await writer.drain()


def parse_count(line: bytes, verb: bytes) -> int | None:
    """`VERB N` → N; None for any other line."""
    words = line.split()
    if len(words) != 2 or words[0] != verb or not words[1].isdigit():
        return None
    return int(words[1])


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one connection until the peer closes it or it breaks."""
    try:
        while line := await reader.readline():
            if (count := parse_count(line, b"pattern")) is not None:
                await _pattern(writer, count)
                continue
            if (count := parse_count(line, b"sink")) is not None:
                await _sink(reader, writer, count)
                continue
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
