"""The bindings table of socket dispatch, as data: labels with their ids, bindings, registrations. Pure.

A binding sends what arrives for (protocol, prefix, port or every port) to the socket registered under its
label. The most specific prefix wins, then a specific port beats all ports; `choose` is the rule in Python,
the one `sk_dispatch.c` applies per packet.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from edgesim.fields import Port, Strict

LABEL_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
Label = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
Protocol = Literal["tcp", "udp"]
PROTOCOL_NUMBERS: dict[str, int] = {"tcp": 6, "udp": 17}
# The socket map's size in sk_dispatch (DISPATCH_MAX_LABELS).
MAX_LABELS = 64


class Binding(Strict):
    """(protocol, destination prefix, port or every port) -> a label."""

    label: Label
    protocol: Protocol = "tcp"
    prefix: IPv4Network
    port: Port | None = Field(None, description="None: every port of the prefix.")

    def key(self) -> tuple[str, IPv4Network, int | None]:
        """What makes two bindings the same binding (whatever their labels)."""
        return (self.protocol, self.prefix, self.port)

    def text(self) -> str:
        """E.g. tcp 198.51.100.64/26 port * -> spectrum."""
        return f"{self.protocol} {self.prefix} port {self.port or '*'} -> {self.label}"


class Registration(Strict):
    """A lab service's listening socket, registered under a label on every edge where the service runs."""

    label: Label
    service: str  # the service's name in the plan (each edge's own instance)
    listen: str  # the address:port the service's socket is bound to (how the agent finds it)
    protocol: Protocol = "tcp"


class BindingTable(Strict):
    """The lab's dispatch table: every label's id, the bindings, and the registrations."""

    labels: dict[Label, int] = Field(default_factory=dict)
    bindings: list[Binding] = Field(default_factory=list)
    registrations: list[Registration] = Field(default_factory=list)

    def label_id(self, label: str) -> int | None:
        """The id of a known label."""
        return self.labels.get(label)

    def with_label(self, label: str) -> BindingTable:
        """The table knowing `label` (a new id, never one used before in this table)."""
        if label in self.labels:
            return self
        used = set(self.labels.values())
        free = next(i for i in range(MAX_LABELS + 1) if i not in used)
        if free >= MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        return self.model_copy(update={"labels": {**self.labels, label: free}})

    def with_binding(self, binding: Binding) -> BindingTable:
        """The table with `binding`, replacing a binding of the same protocol, prefix and port."""
        table = self.with_label(binding.label)
        kept = [b for b in table.bindings if b.key() != binding.key()]
        return table.model_copy(update={"bindings": [*kept, binding]})

    def without_binding(self, protocol: str, prefix: IPv4Network, port: int | None) -> BindingTable:
        """The table without that binding (the same table when it has none)."""
        kept = [b for b in self.bindings if b.key() != (protocol, prefix, port)]
        return self.model_copy(update={"bindings": kept})

    def with_registration(self, registration: Registration) -> BindingTable:
        """The table with `registration` in the place of the label's previous one."""
        table = self.with_label(registration.label)
        kept = [r for r in table.registrations if r.label != registration.label]
        return table.model_copy(update={"registrations": [*kept, registration]})

    def without_registration(self, label: str) -> BindingTable:
        """The table without the label's registration: its bindings then drop what they match."""
        kept = [r for r in self.registrations if r.label != label]
        return self.model_copy(update={"registrations": kept})


def choose(bindings: list[Binding], protocol: str, address: IPv4Address, port: int) -> Binding | None:
    """The binding a packet falls under: the longest prefix holding `address`, a specific port on a tie."""
    matching = [
        b for b in bindings if b.protocol == protocol and address in b.prefix and b.port in (None, port)
    ]
    if not matching:
        return None
    return max(matching, key=lambda b: (b.prefix.prefixlen, b.port is not None))
