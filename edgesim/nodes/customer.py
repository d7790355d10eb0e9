"""A customer node: a site router terminating its tenant's GRE tunnel, or a server behind it."""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from edgesim.backends.base import Backend
from edgesim.bpf import loader
from edgesim.errors import EdgesimError, Problem
from edgesim.netlink import index_of
from edgesim.nodes.base import NodeRole
from edgesim.plan import NodePlan, TunnelPlan
from edgesim.tenants import nft
from edgesim.tenants.gre import GreEndpoint, Route

# The kernel GRE device of a site router in `kernel` mode, and the routing table its tenant's traffic uses.
KERNEL_GRE_IFNAME = "gre-edges"
KERNEL_GRE_TABLE = 100
KERNEL_GRE_RULE_PRIORITY = 100


class Customer(NodeRole):
    """A site router (GRE to the edges' anycast endpoint, by eBPF or the kernel) or a customer server."""

    role = "customer"

    def configure(self) -> None:
        """Addresses and routes; on a site router also the tunnel and the MSS clamp."""
        super().configure()
        tunnel = self.node.tunnel
        if tunnel is None:
            return
        mode = tunnel.mode
        if mode == "auto":
            mode = "kernel" if kernel_gre_available(self.backend, self.node) else "ebpf"
        if mode == "kernel":
            _kernel_tunnel(self.backend, self.node, tunnel)
        else:
            _ebpf_tunnel(self.node.netns, tunnel)
        nft.apply(self.node.netns, nft.site_ruleset())

    def teardown(self) -> None:
        """The tunnel and MSS clamp of a site router gone (either GRE mode), then what every role undoes."""
        tunnel = self.node.tunnel
        if tunnel is not None:
            nft.remove(self.node.netns, nft.SITE_TABLE)
            for direction in ("ingress", "egress"):
                loader.detach_tc(self.node.netns, tunnel.ifname, direction)
            with self.backend.netlink(self.node) as ipr:
                for offset in range(len(tunnel.prefixes)):
                    _delete_rule(ipr, KERNEL_GRE_RULE_PRIORITY + offset)
                index = index_of(ipr, KERNEL_GRE_IFNAME)
                if index is not None:
                    ipr.link("del", index=index)
        super().teardown()

    def summary_parts(self) -> list[str]:
        """The tunnel of a site router, the services of a server."""
        tunnel = self.node.tunnel
        if tunnel is None:
            return super().summary_parts()
        prefixes = ", ".join(tunnel.prefixes)
        return [f"GRE site router ({self._mode_in_use()}): {tunnel.local} <-> {tunnel.remote} for {prefixes}"]

    def _mode_in_use(self) -> str:
        """The GRE mode as configured, and for `auto` the one `up` picked (a kernel device exists or not)."""
        assert self.node.tunnel is not None
        if self.node.tunnel.mode != "auto":
            return self.node.tunnel.mode
        try:
            with self.backend.netlink(self.node) as ipr:
                kernel = bool(ipr.link_lookup(ifname=KERNEL_GRE_IFNAME))
        except (NetlinkError, OSError):
            return "auto"
        return "auto: kernel" if kernel else "auto: ebpf"


def kernel_gre_available(backend: Backend, node: NodePlan) -> bool:
    """Whether this kernel can make a GRE device (ip_gre built in or loadable): try one and remove it."""
    with backend.netlink(node) as ipr:
        try:
            ipr.link("add", ifname="gre-probe", kind="gre", gre_remote="192.0.2.1")
        except NetlinkError as err:
            if err.code in (errno.EOPNOTSUPP, errno.ENODEV, errno.EAFNOSUPPORT, errno.EINVAL):
                return False
            raise
        ipr.link("del", index=ipr.link_lookup(ifname="gre-probe")[0])
        return True


def _ebpf_tunnel(netns: str, tunnel: TunnelPlan) -> None:
    """GRE by edgesim's TC programs on the public interface: out by inner source, in from the edges."""
    remote = IPv4Address(tunnel.remote)
    endpoint = GreEndpoint(IPv4Address(tunnel.local), by_source=True, check_source=False, mark_base=0)
    endpoint.sync(
        {IPv4Network(p): Route(tunnel.tenant, remote) for p in tunnel.prefixes}, {remote: tunnel.tenant}
    )
    # The attached programs keep themselves and their maps alive after this process exits.
    endpoint.attach_decap(netns, tunnel.ifname)
    endpoint.attach_encap(netns, tunnel.ifname)


def _kernel_tunnel(backend: Backend, node: NodePlan, tunnel: TunnelPlan) -> None:
    """GRE by the kernel's ip_gre: a device to the edges' endpoint, and the tenant's prefixes routed into it.

    Not exercised where the kernel has no ip_gre (the development VM): `auto` picks eBPF there.
    """
    with backend.netlink(node) as ipr:
        if not ipr.link_lookup(ifname=KERNEL_GRE_IFNAME):
            try:
                ipr.link(
                    "add",
                    ifname=KERNEL_GRE_IFNAME,
                    kind="gre",
                    gre_local=tunnel.local,
                    gre_remote=tunnel.remote,
                    gre_ttl=64,
                )
            except NetlinkError as err:
                raise EdgesimError(
                    Problem(
                        f"{node.netns}/{KERNEL_GRE_IFNAME}",
                        f"this kernel cannot make a GRE device: {err}",
                        "use `gre: ebpf` (or `auto`) on the site router",
                    )
                ) from err
        index = ipr.link_lookup(ifname=KERNEL_GRE_IFNAME)[0]
        ipr.link("set", index=index, state="up")
        # The device's MTU is the link's minus the 24 bytes of outer header: routes through it inherit it.
        ipr.route("replace", dst="0.0.0.0/0", oif=index, table=KERNEL_GRE_TABLE)
        existing = {r.get("FRA_PRIORITY") for r in ipr.get_rules(family=socket.AF_INET)}
        for offset, prefix in enumerate(map(IPv4Network, tunnel.prefixes)):
            priority = KERNEL_GRE_RULE_PRIORITY + offset
            if priority not in existing:
                src = str(prefix.network_address)
                ipr.rule("add", priority=priority, src=src, src_len=prefix.prefixlen, table=KERNEL_GRE_TABLE)


def _delete_rule(ipr: IPRoute, priority: int) -> None:
    """Remove the policy rule at `priority`, if there is one."""
    try:
        ipr.rule("del", priority=priority, table=KERNEL_GRE_TABLE)
    except NetlinkError as err:
        if err.code not in (errno.ENOENT, errno.ESRCH):
            raise
