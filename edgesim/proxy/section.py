"""The `proxy:` section of a topology: the edges' TCP proxy and its keepalive and drain settings."""

from __future__ import annotations

from pydantic import Field

from edgesim.fields import NodeName, Port, Strict

# Bytes a spliced direction may queue in the kernel beyond the sockets' own buffers by default: several
# windows on this lab's paths.
DEFAULT_BUDGET = 16 << 20


class Keepalive(Strict):
    """TCP keepalive of the edge proxy's sockets (both sides)."""

    idle_s: int = Field(4, ge=1, le=32767, description="TCP_KEEPIDLE: idle seconds before the first probe.")
    interval_s: int = Field(2, ge=1, le=32767, description="TCP_KEEPINTVL: seconds between probes.")
    count: int = Field(3, ge=1, le=127, description="TCP_KEEPCNT: unanswered probes that end the connection.")


class TcpProxy(Strict):
    """The edges' layer-4 TCP proxy: a port on every VIP, proxied to an origin server on a lab host."""

    port: Port = Field(8080, description="Port the proxy listens on, on every VIP.")
    origin: NodeName = Field(description="The host node that runs the origin server.")
    origin_port: Port = Field(9000, description="The origin server's port.")
    keepalive: Keepalive = Field(default_factory=Keepalive)
    user_timeout_ms: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="TCP_USER_TIMEOUT of the proxy's sockets; default: idle + interval x count (keepalive).",
    )
    min_drain_bytes_per_s: int = Field(
        16384,
        ge=1,
        description="A connection whose unsent bytes drain slower than this (over drain_window_s) is closed.",
    )
    drain_window_s: float = Field(2.0, gt=0, le=3600, description="The window of the drain-pace check.")
    splice: bool = Field(
        True,
        description="Hand each connection to the kernel once both sides are up (SOCKMAP); false: copy in "
        "user space. Where the kernel refuses, the proxy copies and says so.",
    )
    splice_budget_bytes: int = Field(
        DEFAULT_BUDGET,
        ge=65536,
        le=1 << 30,
        description="Bytes a spliced direction may hand to the kernel ahead of what its reader's socket "
        "has taken (a redirect reopens the sender's window at once: this is the back pressure); past it the "
        "proxy copies until the reader catches up.",
    )

    def effective_user_timeout_ms(self) -> int:
        """TCP_USER_TIMEOUT: as configured, else the time keepalive takes to give up on a silent peer."""
        if self.user_timeout_ms is not None:
            return self.user_timeout_ms
        return 1000 * (self.keepalive.idle_s + self.keepalive.interval_s * self.keepalive.count)
