"""A loopback-only TCP relay from the host to a service inside a lab node (the lab's Prometheus UI).

Runs in the host's root namespace under the lab supervisor (a host service); listens on 127.0.0.1 only
and opens each upstream connection from a thread that has entered the node's namespace, so nothing of
the lab is routed in the root namespace. Writes the address it listens on to --record (relative to the
lab's state directory, its working directory); dies with the supervisor (PR_SET_PDEATHSIG).

    python -m edgesim.metrics.relay --lab pop --node mgmt --target 127.0.0.1:9090 --port 29100 \
        --record ui.json
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from edgesim import runtime
from edgesim.files import atomic_write_json

PORT_TRIES = 50  # other labs (and other programs) may hold the first choice
PR_SET_PDEATHSIG = 1
CHUNK = 65536


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies, even by SIGKILL (nothing left in the root ns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def bind_loopback(port: int, tries: int = PORT_TRIES) -> socket.socket:
    """A listening socket on 127.0.0.1: `port`, or the next free one."""
    for candidate in range(port, port + tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(64)
        return sock
    raise OSError(f"no free port on 127.0.0.1 in {port}-{port + tries - 1}")


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction until EOF, then half-close the other side."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _relay(client: socket.socket, connect: Callable[[], socket.socket]) -> None:
    with client:
        try:
            upstream = connect()
        except OSError as err:
            print(f"relay: upstream: {err}", file=sys.stderr, flush=True)
            return
        with upstream:
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()


def main(argv: list[str] | None = None) -> int:
    """Relay until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True)
    parser.add_argument("--node", required=True, help="the node the target lives in")
    parser.add_argument("--target", required=True, help="address:port inside the node")
    parser.add_argument("--port", required=True, type=int, help="first choice of port on 127.0.0.1")
    parser.add_argument("--record", required=True, type=Path, help="file to write the listening address to")
    args = parser.parse_args(argv)
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    node = runtime.node_plan(args.lab, args.node)
    backend = runtime.backend(args.lab)
    host, port = args.target.rsplit(":", 1)

    def connect() -> socket.socket:
        with backend.enter(node):  # this thread only; the socket stays in the node's namespace
            return socket.create_connection((host, int(port)), timeout=5.0)

    listener = bind_loopback(args.port)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    target = f"{args.node} {args.target}"
    atomic_write_json(args.record, {"address": address, "pid": os.getpid(), "target": target})
    print(f"relay: {address} -> {args.node} {args.target}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, connect), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
