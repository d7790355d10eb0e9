"""DNS in the lab's life cycle: what each edge's DNS service and its socket filter have done, for `status`."""

from __future__ import annotations

from edgesim.dns import control
from edgesim.errors import EdgesimError
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.plan import LabPlan, NodePlan


class DnsHooks(FeatureHooks):
    """Labs with a `dns:` section: the supervisor runs the service; `up` waits for its control socket."""

    def active(self, plan: LabPlan) -> bool:
        """Only labs whose topology has a `dns:` section."""
        return plan.dns is not None

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """An edge: queries answered, and what the socket filter and the receive buffer dropped."""
        dns = ctx.plan.dns
        if dns is None or node.name not in dns.sockets:
            return []
        try:
            stats = control.request(ctx.state.dir / dns.sockets[node.name], "stats", top=0)
        except EdgesimError:
            return ["[red]DNS service not answering[/]"]
        limit = stats["limit"]
        mode = f"{limit['rate']}/s per source" if limit["enabled"] else "counting only"
        return [
            f"DNS {stats['queries'].get('answered', 0)} answered; filter ({mode}) "
            f"dropped {stats['filter']['dropped']}, socket buffer dropped {stats['rx_drops']}"
        ]


HOOKS = DnsHooks()
