"""An anonymous, read-only FTP server with active-mode data connections from port 20 (RFC 959's L-1).

In a customer server: `python -m edgesim.services.ftp_server --name acme_www --listen 203.0.113.100:21`.
It serves the files of edgesim.services.ftp_files (a test regenerates them to check every byte that
crossed the tunnel). Data connections are active (PORT): the server connects from port 20, so a stateless
firewall allowing ports 20-21 towards the server lets FTP through; passive mode would need the data ports
opened too.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import socket
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.handlers.ftp.dispatchers import ActiveDTP
from pyftpdlib.log import config_logging
from pyftpdlib.servers import FTPServer

from edgesim.services.ftp_files import make_root

FTP_DATA_PORT = 20


class PortTwentyDTP(ActiveDTP):
    """Active data connections from the server's port 20, as RFC 959 has it."""

    def create_socket(self, family: int, type: int) -> None:
        """Make the socket, allowing several data connections from port 20 at once."""
        super().create_socket(family, type)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def connect_af_unspecified(
        self, addr: tuple[str, int], source_address: tuple[str, int] | None = None
    ) -> int:
        """Connect to the client's data port from (our address, 20)."""
        host = source_address[0] if source_address else ""
        return super().connect_af_unspecified(addr, (host, FTP_DATA_PORT))


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then remove the files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="node name, the content of hello.txt")
    parser.add_argument("--listen", required=True, help="address:port of the control connection")
    args = parser.parse_args(argv)
    config_logging(level=logging.WARNING)  # not a line per command: tests open hundreds of sessions
    host, port = args.listen.rsplit(":", 1)
    root = make_root(args.name)
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root))  # read-only: list and retrieve
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "active_dtp": PortTwentyDTP})
    handler.banner = f"edgesim ftp on {args.name}"
    server = FTPServer((host, int(port)), handler)
    # SystemExit inside serve_forever makes it close every connection and return.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{args.name}: ftp on {args.listen}, data from port {FTP_DATA_PORT}", flush=True)
    try:
        server.serve_forever()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
