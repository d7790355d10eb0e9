"""The edges' layer-4 TCP proxy: accepts on the VIP, connects to the origin, copies bytes both ways.

Run by the lab supervisor on every edge, e.g. `python -m edgesim.services.tcp_proxy --name edge1
--listen 198.51.100.10:8080 --origin 100.64.0.7:9000 --keepidle 4 --keepintvl 2 --keepcnt 3
--user-timeout-ms 10000 --min-drain 16384 --drain-window 4`.

Both sockets of a connection (client side and origin side) use the settings that make a vanished peer visible:
- keepalive on (TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT), so an idle connection probes its peer;
- TCP_USER_TIMEOUT = KEEPIDLE + KEEPINTVL x KEEPCNT (unless configured), so a connection with data in flight
  gives up on the same schedule instead of retransmitting for ~15 minutes (tcp_retries2); with it set, the
  kernel ends an idle connection when the user timeout has passed and a keepalive probe is unanswered;
- TCP_NOTSENT_LOWAT, so unsent data waits in the proxy (where it is counted) rather than piling up in the
  kernel;
- the drain-pace check (edgesim.services.drain): every few hundred ms the proxy reads TCP_INFO; while bytes
  wait unsent for a peer (tcpi_notsent_bytes, or in the proxy), that peer owes the minimum pace, paid off by
  the advance of the window it advertises (tcpi_bytes_acked + tcpi_snd_wnd); a debt of one window's worth
  closes the connection.
  The user timeout alone cannot catch a peer that still ACKs but reads nothing (a zero window), and must not
  cut one that reads slowly but steadily; this check does both.
A connection that fails is aborted on both sides (RST), so nothing lingers on the edge.

With `--splice` (SOCKMAP, edgesim.proxy.splice) both sockets of a connection go into a socket hash once the
origin connection is up; the proxy copies the first bytes, then hands each direction to the kernel, which
moves the bytes from one socket to the other without this process. The proxy still watches both sockets
(end of file, errors, the drain pace; keepalive and the user timeout are the kernel's as before) and copies
again only while a direction's budget is spent. Where the kernel refuses (no SOCKMAP, a socket it will not
take) it says so and copies. `--socket` answers `stats`: connections, bytes copied here, the kernel's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesim.probes.tcpinfo import TcpInfo, tcp_info
from edgesim.proxy.splice import DEFAULT_BUDGET, MODE_SPLICE, Direction, Splicer, SpliceUnavailable
from edgesim.services.drain import DrainMonitor
from edgesim.services.serving import host_port, stop_event

CHUNK = 65536
CHECK_S = 0.25  # how often the drain pace is sampled
NOTSENT_LOWAT = 16384
CONNECT_TIMEOUT_S = 5.0
# What a spliced side forwards at once when the kernel leaves bytes to the proxy: a whole receive queue
# (tcp_rmem's maximum is 6 MiB), so that after a pause one round can empty it and find the quiet moment.
SPLICE_CHUNK = 8 << 20
EXTEND_S = 0.02  # how often a spliced direction's budget follows its peer's progress
BARRIER_MAX_S = 0.05  # the longest wait between looks while redirected bytes drain before copied ones


@dataclass(frozen=True)
class Settings:
    """The proxy's socket settings and drain-pace check."""

    origin: tuple[str, int]
    keepidle: int
    keepintvl: int
    keepcnt: int
    user_timeout_ms: int
    min_drain: int
    drain_window: float
    splice: bool = False
    splice_budget: int = DEFAULT_BUDGET


def configure(sock: socket.socket, settings: Settings) -> None:
    """Keepalive, user timeout and low-water mark of unsent data, on one socket."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, settings.keepidle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, settings.keepintvl)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, settings.keepcnt)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, settings.user_timeout_ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)


def abort(sock: socket.socket) -> None:
    """Close with a RST: no FIN_WAIT or orphan retransmissions towards a peer that is gone."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # the kernel already closed it
    sock.close()


class SideFailed(Exception):
    """A socket of the connection failed (reset, timed out): which side, and the error."""

    def __init__(self, side: str, error: OSError) -> None:
        super().__init__(f"{side} side failed: {error.strerror or error}")


def consumed(info: TcpInfo) -> int:
    """What the peer's application has taken so far: the right edge of the window it advertises.

    The kernel's counters, so the same measure holds whether the proxy copies the bytes or not; kernels
    before 5.4 have no tcpi_snd_wnd, and then acknowledged bytes are the nearest measure.
    """
    return info.bytes_acked + (info.snd_wnd or 0)


class Side:
    """One socket of a proxied connection and what the proxy wrote into it."""

    def __init__(self, name: str, sock: socket.socket, settings: Settings) -> None:
        self.name = name
        self.sock = sock
        self.read = 0  # bytes the proxy read from this socket
        self.written = 0  # bytes the proxy wrote into it (copied; spliced bytes are the kernel's)
        self.waiting = 0  # bytes the proxy holds for this socket that it has not taken yet
        # A sample more than two periods late means this process was late, not the peer slow.
        self.monitor = DrainMonitor(settings.min_drain, settings.drain_window, max_step_s=2 * CHECK_S)
        self.user_timeout_ms = settings.user_timeout_ms  # as set on the socket now

    def judge_by_drain(self, backlogged: bool, configured_ms: int) -> None:
        """While bytes wait unsent, the drain check is the judge: lift TCP_USER_TIMEOUT, restore it after.

        The kernel's user timeout also bounds zero-window probing, counted from the first probe of a stall
        and not reset by answered probes; a receiver reading slowly keeps its window near zero, so the
        kernel would kill a slow but progressing client. The drain check cuts one that does not progress.
        """
        wanted = 0 if backlogged else configured_ms
        if wanted != self.user_timeout_ms:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, wanted)
            self.user_timeout_ms = wanted


class ProxyStats:
    """What the proxy did, for `stats`: connections, bytes it copied itself, splices and refusals."""

    def __init__(self, splice: str) -> None:
        self.splice = splice  # "on", "off", or why the kernel refused it
        self.connections: Counter[str] = Counter()  # accepted, open, spliced, copied (not spliced)
        self.copied: Counter[str] = Counter()  # bytes copied in user space, per direction
        self.refusals: Counter[str] = Counter()  # per-connection refusals of the splice, by reason

    def as_dict(self, splicer: Splicer | None) -> dict[str, Any]:
        """The counters, with the kernel's splice totals when splicing."""
        return {
            "splice": self.splice,
            "connections": dict(self.connections),
            "copied_bytes": dict(self.copied),
            "refusals": dict(self.refusals),
            "kernel": splicer.totals() if splicer is not None else {},
        }


class Connection:
    """A client connection and its origin connection, copied both ways until one end is done or fails."""

    def __init__(
        self,
        client: socket.socket,
        peer: str,
        settings: Settings,
        label: str,
        splicer: Splicer | None = None,
        stats: ProxyStats | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.settings = settings
        self.label = f"{label} {peer}"
        self.client = Side("client", client, settings)
        self.origin: Side | None = None
        self.splicer = splicer
        self.stats = stats or ProxyStats("off")
        self.directions: dict[str, Direction] = {}  # by source side name, while spliced

    async def run(self) -> None:
        """Connect to the origin, copy (or splice), watch the drain pace; close both sides at the end."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        configure(sock, self.settings)
        self.origin = Side("origin", sock, self.settings)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, self.settings.origin), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            self._log(f"origin {self.settings.origin[0]}:{self.settings.origin[1]} unreachable: {err}")
            abort(sock)
            abort(self.client.sock)
            return
        self._splice(self.origin)
        both = [
            asyncio.ensure_future(self._pump(self.client, self.origin)),
            asyncio.ensure_future(self._pump(self.origin, self.client)),
        ]
        pumps = asyncio.gather(*both)
        watch = asyncio.ensure_future(self._watch())
        helpers = [watch]
        if self.directions:
            helpers.append(asyncio.ensure_future(self._extend()))
        done, _ = await asyncio.wait({pumps, watch}, return_when=asyncio.FIRST_COMPLETED)
        reason = self._reason(pumps, watch, done)
        # Cancel each pump, not only their gather: once one pump has failed the gather is done, and
        # cancelling it no longer reaches the other, which would go on waiting on a socket closed below. Its
        # file descriptor stays registered with the event loop then, and the next socket given that number
        # fails in the loop's epoll (ENOENT: "origin unreachable: No such file or directory").
        for task in (*both, *helpers):
            task.cancel()
        # Let the cancelled socket operations unregister their file descriptors before the sockets close.
        await asyncio.gather(*both, pumps, *helpers, return_exceptions=True)
        if self.splicer is not None and self.directions:
            self.splicer.forget(tuple(self.directions.values()))
        for side in (self.client, self.origin):
            if reason:
                abort(side.sock)
            else:
                side.sock.close()
        self._log(f"closed: {reason or 'both ends done'}")

    def _splice(self, origin: Side) -> None:
        """Both sockets into the splice's socket hash, when splicing; the kernel may refuse (then copy)."""
        self.stats.connections["accepted"] += 1
        if self.splicer is None:
            self.stats.connections["copied"] += 1
            return
        try:
            to_origin, to_client = self.splicer.join(self.client.sock, origin.sock)
        except (SpliceUnavailable, OSError) as err:
            self.stats.refusals[str(err)] += 1
            self.stats.connections["copied"] += 1
            self._log(f"not spliced, copying: {err}")
            return
        self.directions = {"client": to_origin, "origin": to_client}
        self.stats.connections["spliced"] += 1
        # The kernel's redirect worker stops each time a socket's unsent bytes reach the low-water mark and
        # waits to be woken again: with 16 KiB that is a wakeup per 16 KiB (measured through the lab: 0.39
        # Gbit/s against 0.67-0.82 without). Redirected bytes that wait are counted anyway (`pending`).
        for sock in (self.client.sock, origin.sock):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 0)  # 0: the system's (no limit)

    def _reason(self, pumps: asyncio.Future, watch: asyncio.Future, done: set[asyncio.Future]) -> str | None:
        if watch in done:
            return watch.result()
        error = pumps.exception() if pumps in done else None
        return None if error is None else str(error)

    async def _pump(self, src: Side, dst: Side) -> None:
        direction = self.directions.get(src.name)
        while True:
            try:
                if direction is None:
                    data = await self.loop.sock_recv(src.sock, CHUNK)
                else:
                    data = await self._spliced_take(direction, src, dst)
            except OSError as err:
                raise SideFailed(src.name, err) from err
            if not data:
                try:
                    dst.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the other side is already gone; its own pump reports why
                return
            src.read += len(data)
            self.stats.copied[f"{src.name}->{dst.name}"] += len(data)
            if direction is not None:
                continue  # _spliced_take forwarded it already
            try:
                await self._send(dst, data)
            except OSError as err:
                raise SideFailed(dst.name, err) from err

    async def _spliced_take(self, direction: Direction, src: Side, dst: Side) -> bytes:
        """Hand over when all is forwarded; else forward what the kernel left here, in order; b"" at the end.

        Bytes are peeked, written into dst, and only then consumed: while they wait the sender's window stays
        as full as it was, so when they are gone and nothing new has come, the handover can be asked for in
        the quiet moment that follows (a read that reopens the window would let the sender refill the queue
        before the proxy is done forwarding, and a bulk stream after a pause would never be handed back).
        """
        while True:
            # Every byte read so far is in dst's queue: the kernel may take over from here.
            direction.hand_over(src.read, dst.written)
            await self._readable(src.sock)
            # What the kernel left here, or the end of the stream, comes after what it redirected.
            await self._barrier(direction, dst)
            try:
                data = src.sock.recv(SPLICE_CHUNK, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            if not data:
                return data
            try:
                await self._send(dst, data)
            except OSError as err:
                raise SideFailed(dst.name, err) from err
            taken = src.sock.recv_into(bytearray(len(data)), len(data))
            if taken != len(data):  # nothing else reads this socket: the peeked bytes are still first
                raise SideFailed(src.name, OSError(0, f"peeked {len(data)} bytes, read {taken}"))
            return data

    async def _readable(self, sock: socket.socket) -> None:
        ready = self.loop.create_future()
        fd = sock.fileno()
        self.loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            self.loop.remove_reader(fd)

    async def _barrier(self, direction: Direction, dst: Side) -> None:
        """Wait until dst's send queue has taken every byte redirected to it (the watch judges its pace)."""
        pause = 0.001
        while (pending := direction.pending(dst.written)) > 0:
            dst.waiting = pending
            await asyncio.sleep(pause)
            pause = min(2 * pause, BARRIER_MAX_S)
        dst.waiting = 0

    async def _extend(self) -> None:
        """Keep each spliced direction's budget a budget ahead of its peer's progress."""
        sides = {"client": self.client, "origin": self.origin}
        targets = {"client": "origin", "origin": "client"}
        while True:
            await asyncio.sleep(EXTEND_S)
            for name, direction in self.directions.items():
                with contextlib.suppress(OSError, KeyError):  # a socket going: the pumps say why
                    if direction.state().mode == MODE_SPLICE:
                        target = sides[targets[name]]
                        assert target is not None
                        direction.extend(target.written)

    async def _send(self, side: Side, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = side.sock.send(view)
            except BlockingIOError:
                side.waiting = len(view)
                await self._writable(side.sock)
                continue
            side.written += sent
            view = view[sent:]
        side.waiting = 0

    async def _writable(self, sock: socket.socket) -> None:
        # With TCP_NOTSENT_LOWAT the socket turns writable only once its unsent bytes fall below the mark.
        ready = self.loop.create_future()
        fd = sock.fileno()
        self.loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            self.loop.remove_writer(fd)

    async def _watch(self) -> str:
        sides = [self.client, self.origin]
        # The direction whose bytes a side receives from the kernel: its redirected bytes wait for it too.
        into = {"origin": self.directions.get("client"), "client": self.directions.get("origin")}
        while True:
            await asyncio.sleep(CHECK_S)
            now = self.loop.time()
            for side in sides:
                if side is None:
                    continue
                try:
                    info = tcp_info(side.sock)
                    notsent = info.notsent_bytes or 0
                    direction = into[side.name]
                    redirected = direction.pending(side.written) if direction is not None else 0
                    backlogged = notsent > 0 or side.waiting > 0 or redirected > 0
                    side.judge_by_drain(backlogged, self.settings.user_timeout_ms)
                except OSError as err:
                    return f"{side.name} side gone: {err.strerror}"
                cut = side.monitor.observe(now, consumed(info), backlogged, info.snd_wnd or 0)
                if cut is not None:
                    return (
                        f"{side.name} side drains {cut.rate:.0f} B/s, {cut.debt:.0f} B behind the minimum "
                        f"{self.settings.min_drain} B/s after {cut.seconds:.1f} s backlogged "
                        f"(allowed: {side.monitor.allowance():.0f} B)"
                    )

    def _log(self, message: str) -> None:
        print(f"{self.label}: {message}", flush=True)


def start_splicer(settings: Settings, name: str) -> tuple[Splicer | None, str]:
    """The splice when asked for and the kernel takes it; else None, and what `stats` says about it."""
    if not settings.splice:
        return None, "off"
    try:
        return Splicer(settings.splice_budget), "on"
    except SpliceUnavailable as err:
        print(f"{name}: splicing unavailable, copying in user space: {err}", flush=True)
        return None, f"unavailable: {err}"


async def serve_control(path: Path, answer: Any) -> asyncio.AbstractServer:
    """A unix socket answering one JSON request per line (`{"op": "stats"}`) with `answer(request)`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = {"ok": True, **answer(json.loads(line))}
                except (ValueError, KeyError) as err:
                    reply = {"ok": False, "error": f"bad request: {err}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except OSError:
            pass  # the asker went away
        finally:
            writer.close()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket of an earlier run of this service, at this exact path
    return await asyncio.start_unix_server(handle, path=str(path))


async def serve(name: str, listens: list[str], settings: Settings, control: Path | None = None) -> None:
    """Accept on every address until SIGTERM/SIGINT, one Connection per client."""
    loop = asyncio.get_running_loop()
    stop = stop_event()
    splicer, splice_state = start_splicer(settings, name)
    stats = ProxyStats(splice_state)
    listeners = []
    for listen in listens:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(host_port(listen))
        sock.listen(1024)
        sock.setblocking(False)
        listeners.append(sock)
    connections: set[asyncio.Task] = set()

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] != "stats":
            raise KeyError(request["op"])
        return {**stats.as_dict(splicer), "open": len(connections)}

    async def accept(listener: socket.socket) -> None:
        while True:
            client, (address, port) = await loop.sock_accept(listener)
            client.setblocking(False)
            configure(client, settings)
            connection = Connection(client, f"{address}:{port}", settings, name, splicer, stats)
            task = asyncio.ensure_future(connection.run())
            connections.add(task)
            task.add_done_callback(connections.discard)

    server = await serve_control(control, answer) if control is not None else None
    acceptors = [asyncio.ensure_future(accept(listener)) for listener in listeners]
    print(
        f"{name}: TCP proxy on {', '.join(listens)} → {settings.origin[0]}:{settings.origin[1]} "
        f"(keepalive {settings.keepidle}+{settings.keepintvl}x{settings.keepcnt} s, "
        f"user timeout {settings.user_timeout_ms} ms, min drain {settings.min_drain} B/s "
        f"over {settings.drain_window:g} s, splice {splice_state})",
        flush=True,
    )
    await stop.wait()
    for task in [*acceptors, *connections]:
        task.cancel()
    for listener in listeners:
        listener.close()
    if server is not None:
        server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="node name, for the log")
    parser.add_argument("--listen", action="append", required=True, help="address:port (repeatable)")
    parser.add_argument("--origin", required=True, help="origin server address:port")
    parser.add_argument("--keepidle", type=int, default=4, help="TCP_KEEPIDLE (s)")
    parser.add_argument("--keepintvl", type=int, default=2, help="TCP_KEEPINTVL (s)")
    parser.add_argument("--keepcnt", type=int, default=3, help="TCP_KEEPCNT")
    parser.add_argument("--user-timeout-ms", type=int, help="TCP_USER_TIMEOUT (default: idle + intvl x cnt)")
    parser.add_argument("--min-drain", type=int, default=16384, help="minimum drain pace (bytes/s)")
    parser.add_argument("--drain-window", type=float, default=2.0, help="window of the drain check (s)")
    parser.add_argument("--splice", action="store_true", help="hand connections to the kernel (SOCKMAP)")
    parser.add_argument(
        "--splice-budget", type=int, default=DEFAULT_BUDGET, help="bytes a direction may redirect ahead"
    )
    parser.add_argument("--socket", type=Path, help="control socket (answers stats)")
    args = parser.parse_args(argv)
    settings = Settings(
        origin=host_port(args.origin),
        keepidle=args.keepidle,
        keepintvl=args.keepintvl,
        keepcnt=args.keepcnt,
        user_timeout_ms=args.user_timeout_ms or 1000 * (args.keepidle + args.keepintvl * args.keepcnt),
        min_drain=args.min_drain,
        drain_window=args.drain_window,
        splice=args.splice,
        splice_budget=args.splice_budget,
    )
    asyncio.run(serve(args.name, args.listen, settings, args.socket))
    return 0


if __name__ == "__main__":
    sys.exit(main())
