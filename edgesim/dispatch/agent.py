"""The per-edge dispatch agent: attaches the sk_lookup dispatcher to the edge's namespace, keeps its bindings
equal to the lab's table, registers the planned services' sockets under their labels (following their
restarts), and answers `reload` and `stats` on a unix socket. Runs inside the edge, under the supervisor:

    python -m edgesim.dispatch.agent --edge edge1 --table dispatch.json --services services.json \
        --socket dispatch-edge1.sock
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
from pathlib import Path
from typing import Any

from edgesim.bpf import loader, sklookup
from edgesim.dispatch import maps, sockets, store
from edgesim.dispatch import metrics as dispatch_metrics
from edgesim.dispatch.bindings import BindingTable, Registration
from edgesim.errors import EdgesimError
from edgesim.metrics import exporter

PROGRAM = Path("sk_dispatch.c")
ENTRY = "dispatch"
# How often registrations are checked against the services' current processes (a restarted service
# has a new socket, which must replace the old one in the map).
FOLLOW_S = 1.0


class Dispatcher:
    """Owns the program, its link to the namespace and its maps; every change goes through one lock."""

    def __init__(self, edge: str, table_file: Path, services_file: Path):
        self.edge = edge
        self.table_file = table_file
        self.services_file = services_file
        self.lock = threading.Lock()
        self.bpf = loader.compile_program(PROGRAM)
        self.prog_fd = sklookup.load(self.bpf, ENTRY)
        self.sockets_fd = loader.map_fd(self.bpf, "sockets")
        self.table = BindingTable()
        self.registered: dict[str, tuple[int, int]] = {}  # label -> (pid, socket inode) in the map
        self.problems: dict[str, str] = {}  # label -> why its registration is not in the map
        self.link_fd = -1

    def start(self) -> None:
        """Fill the maps first, then attach: never a dispatcher without its bindings."""
        self.reload()
        # The agent runs inside the edge: its own namespace is the one to attach to.
        self.link_fd = sklookup.attach(self.prog_fd, "/proc/self/ns/net")

    def reload(self) -> dict[str, Any]:
        """Re-read the table; bring the bindings trie and the socket map to it."""
        with self.lock:
            # A label keeps its id for the table's life (labels are never removed), so counters never mix.
            new = store.read(self.table_file)
            changes = maps.sync_bindings(self.bpf, new)
            self.table = new
            self._follow()
            return {"changes": changes, "bindings": len(new.bindings)}

    def follow(self) -> None:
        """Registrations follow their services' restarts."""
        with self.lock:
            self._follow()

    def _pids(self) -> dict[str, int]:
        try:
            reported = json.loads(self.services_file.read_text())
        except (OSError, ValueError):
            return {}
        prefix = f"{self.edge}/"
        return {
            key[len(prefix) :]: s["pid"] for key, s in reported.items() if key.startswith(prefix) and s["pid"]
        }

    def _follow(self) -> None:
        wanted = {r.label: r for r in self.table.registrations}
        for label in list(self.registered):
            if label not in wanted:
                index = self.table.label_id(label)
                if index is not None:
                    sklookup.sockmap_delete(self.sockets_fd, index)
                del self.registered[label]
        pids = self._pids()
        for label, registration in wanted.items():
            self._register(label, registration, pids.get(registration.service))

    def _register(self, label: str, registration: Registration, pid: int | None) -> None:
        index = self.table.label_id(label)
        if index is None:
            return
        if pid is None:
            self.problems[label] = f"service {registration.service} is not running"
            return
        try:
            inode = sockets.socket_inode(pid, registration.protocol, registration.listen)
        except OSError as err:  # the process went away between the two looks
            self.problems[label] = str(err)
            return
        if inode is None:
            self.problems[label] = f"pid {pid} has no {registration.protocol} socket on {registration.listen}"
            return
        if self.registered.get(label) == (pid, inode):
            return
        try:
            fd = sockets.take(pid, inode)
            try:
                sklookup.sockmap_set(self.sockets_fd, index, fd)
            finally:
                os.close(fd)  # the map holds its own reference to the socket
        except EdgesimError as err:
            self.problems[label] = str(err)
            return
        self.registered[label] = (pid, inode)
        self.problems.pop(label, None)

    def stats(self) -> dict[str, Any]:
        """Per label: counters, bindings, whether a socket is registered; and the totals."""
        with self.lock:
            counters = maps.label_counters(self.bpf, self.table)
            return {
                "labels": {
                    label: {
                        **counters[label],
                        "registered": label in self.registered,
                        "problem": self.problems.get(label),
                        "bindings": [b.text() for b in self.table.bindings if b.label == label],
                    }
                    for label in self.table.labels
                },
                "totals": maps.totals(self.bpf),
            }

    def stop(self) -> None:
        """Detach (closing the link is what detaches it)."""
        if self.link_fd >= 0:
            os.close(self.link_fd)
            self.link_fd = -1


def serve(dispatcher: Dispatcher, path: Path) -> socketserver.UnixStreamServer:
    """A unix-socket server answering one JSON request per connection: reload, stats."""
    handlers = {"reload": dispatcher.reload, "stats": dispatcher.stats}

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline())
                answer: dict[str, Any] = {"ok": True, **handlers[request["op"]]()}
            except (KeyError, ValueError) as err:
                answer = {"ok": False, "error": f"bad request: {err}"}
            except (EdgesimError, OSError) as err:
                answer = {"ok": False, "error": str(err)}
            self.wfile.write(json.dumps(answer).encode() + b"\n")

    path.unlink(missing_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    """Load, attach, serve until SIGTERM, detach."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge", required=True, help="this edge's name (its services' keys)")
    parser.add_argument("--table", required=True, type=Path, help="the lab's bindings table (JSON)")
    parser.add_argument("--services", required=True, type=Path, help="the supervisor's services file")
    parser.add_argument("--socket", required=True, type=Path, help="control socket path")
    parser.add_argument("--metrics", help="address:port to serve Prometheus /metrics on")
    args = parser.parse_args(argv)
    try:
        dispatcher = Dispatcher(args.edge, args.table, args.services)
        dispatcher.start()
    except EdgesimError as err:
        print(f"dispatch agent: {err}", file=sys.stderr, flush=True)
        return 1
    server = serve(dispatcher, args.socket)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.metrics:
        exporter.serve(args.metrics, [dispatch_metrics.source(dispatcher.stats)])
    print(f"dispatch agent: sk_lookup on {args.edge}, {len(dispatcher.table.bindings)} bindings", flush=True)
    while not stop.wait(FOLLOW_S):
        dispatcher.follow()
    server.shutdown()
    args.socket.unlink(missing_ok=True)
    dispatcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
