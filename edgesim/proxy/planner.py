"""The TCP proxy's part of the plan: the proxy on every edge's VIPs, the origin server on its host. Pure."""

from __future__ import annotations

from edgesim.plan.addressing import host_address
from edgesim.plan.builder import PlanBuilder
from edgesim.plan.naming import proxy_socket
from edgesim.plan.records import ServicePlan
from edgesim.plan.roles import listening_service
from edgesim.proxy.section import TcpProxy

PROXY_MODULE = "edgesim.services.tcp_proxy"
ORIGIN_MODULE = "edgesim.services.origin"


def plan_nodes(b: PlanBuilder) -> None:
    """With a `proxy:` section: a proxy service on every edge and the origin service on its host."""
    proxy = b.topology.proxy
    if proxy is None:
        return
    address = host_address(b.interfaces[proxy.origin][0].address)
    origin = f"{address}:{proxy.origin_port}"
    for edge in b.with_role("edge"):
        listens = [f"{vip.address}:{proxy.port}" for vip in b.topology.vips]
        control = proxy_socket(edge.name)
        args = [*_proxy_args(proxy, origin), "--socket", control]
        service = listening_service(PROXY_MODULE, "proxy", edge.name, listens, *args)
        # `up` also waits for the control socket: it exists once the splice is loaded (or refused).
        edge.services.append(service.model_copy(update={"listens": [*listens, f"unix:{control}"]}))
    b.nodes[proxy.origin].services.append(
        ServicePlan(name="origin", module=ORIGIN_MODULE, args=["--listen", origin], listens=[origin])
    )


def _proxy_args(proxy: TcpProxy, origin: str) -> list[str]:
    settings = {
        "--origin": origin,
        "--keepidle": proxy.keepalive.idle_s,
        "--keepintvl": proxy.keepalive.interval_s,
        "--keepcnt": proxy.keepalive.count,
        "--user-timeout-ms": proxy.effective_user_timeout_ms(),
        "--min-drain": proxy.min_drain_bytes_per_s,
        "--drain-window": proxy.drain_window_s,
        "--splice-budget": proxy.splice_budget_bytes,
    }
    words = [word for option, value in settings.items() for word in (option, str(value))]
    return [*words, "--splice"] if proxy.splice else words
