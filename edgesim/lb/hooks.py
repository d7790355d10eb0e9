"""The L4 load balancer in the life cycle: pass programs on the backplane, its first state, agreement."""

from __future__ import annotations

from edgesim.bpf import loader
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.lb import control
from edgesim.nodes.router import pass_program_fd
from edgesim.plan import LabPlan


class LoadBalancerHooks(FeatureHooks):
    """Active in labs with a backplane (two edges or more, and room for its /24)."""

    waits_for = "load balancers agree"

    def active(self, plan: LabPlan) -> bool:
        """Only with a backplane."""
        return plan.backplane is not None

    def prepare(self, ctx: LabContext) -> None:
        """Pass programs on the bridge's ports, and the LB state every agent starts from."""
        bp = ctx.plan.backplane
        assert bp is not None
        # Frames an edge's XDP program redirects into its veth are only received by a peer with XDP.
        for port in bp.ports:
            if loader.xdp_info(bp.netns, port.bridge_port) is None:
                loader.attach_xdp(bp.netns, port.bridge_port, pass_program_fd())
        control.write_initial(ctx.plan)

    def wait_ready(self, ctx: LabContext) -> None:
        """Every edge's agent runs the same table generation with no edge marked failing."""
        control.wait_converged(ctx.plan.lab, ctx.timeout_s)


HOOKS = LoadBalancerHooks()
