"""The `dispatch:` section of a topology: what the edges' sk_lookup dispatcher serves from the start."""

from __future__ import annotations

from ipaddress import IPv4Network

from pydantic import Field

from edgesim.dispatch.bindings import Label
from edgesim.fields import NodeName, Port, Strict


class Spectrum(Strict):
    """A "spectrum"-style TCP proxy: every port of a prefix, through one socket, to an origin server."""

    prefix: IPv4Network = Field(
        description="The prefix whose every port the proxy takes (inside pools.vips)."
    )
    origin: NodeName = Field(description="The host node whose origin server gets the connections.")
    origin_port: Port = Field(9000, description="The origin server's port.")


class SharedPortService(Strict):
    """A service of its own on one port of one prefix (several may share a port on different prefixes)."""

    label: Label
    prefix: IPv4Network = Field(description="Its prefix, inside pools.vips.")
    port: Port = Field(80, description="Its port on that prefix.")


class Dispatch(Strict):
    """Socket dispatch on every edge (sk_lookup): the spectrum proxy and services sharing a port."""

    spectrum: Spectrum | None = None
    services: list[SharedPortService] = Field(default_factory=list)
