"""The TCP timeout lab: when does a TCP socket notice that its peer is gone, and how does it die?

Each case runs in one client/server pair of hosts whose path crosses the lab router, where nftables drops
packets on command; it records every packet (capture in the router), the sockets' kernel timers (sock_diag)
and what the application sees (errno), and compares them with what the kernel's algorithms predict.
"""
