"""sock_diag inside a lab namespace: pyroute2's DiagSocket, opened in the namespace the caller names."""

from __future__ import annotations

import socket

from pyroute2.netlink import NETLINK_SOCK_DIAG
from pyroute2.netlink.diag import SS_ALL, DiagSocket, MarshalDiag
from pyroute2.netlink.nlsocket import NetlinkSocket

from edgesim import namespaces

INET_DIAG_INFO = 2  # extension bit (1 << (INET_DIAG_INFO - 1)): struct tcp_info of full sockets


class NamespaceDiagSocket(DiagSocket):
    """pyroute2's DiagSocket, opened inside a network namespace (DiagSocket itself takes no netns).

    Like every pyroute2 socket it belongs to the thread that created it.
    """

    def __init__(self, netns: str) -> None:
        # A socket belongs to the namespace of the thread that creates it; pyroute2 then uses it as given.
        with namespaces.inside(netns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        NetlinkSocket.__init__(self, NETLINK_SOCK_DIAG, use_socket=sock)
        self.set_marshal(MarshalDiag())
        self.bind()

    def tcp(self) -> tuple:
        """Every IPv4 TCP socket of the namespace (all states), with struct tcp_info where there is one."""
        return self.get_sock_stats(family=socket.AF_INET, states=SS_ALL, extensions=1 << (INET_DIAG_INFO - 1))
