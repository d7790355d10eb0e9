"""A small HTTP/1.1 (keep-alive) service that answers every request with the name of its node.

Run inside an edge node: `python -m edgesim.services.http_echo --name edge1 --listen 198.51.100.10:80`.
Tests read the body (or the X-Edge header) to see which edge served a flow.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edgesim.services.serving import host_port


class EchoServer(ThreadingHTTPServer):
    """Threaded server with a deep accept queue, so a burst of 1,024 connects is not refused."""

    daemon_threads = True
    request_queue_size = 4096
    allow_reuse_address = True


def make_handler(node: str) -> type[BaseHTTPRequestHandler]:
    """A request handler class that answers with `node`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive by default
        server_version = "edgesim-http"

        def do_GET(self) -> None:
            body = f"{node}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Edge", node)
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            # One line per request would flood the log under load tests.
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="node name returned in every answer")
    parser.add_argument("--listen", action="append", required=True, help="address:port (repeatable)")
    args = parser.parse_args(argv)
    handler = make_handler(args.name)
    servers = [EchoServer(host_port(listen), handler) for listen in args.listen]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{args.name}: serving on {', '.join(args.listen)}", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
