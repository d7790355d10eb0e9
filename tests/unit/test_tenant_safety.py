"""Issue 17's safety rules, without root: what tenants' traffic is refused, the XDP agent's control sessions,
the warnings of `mitigate add`, and a new supervisor taking over running services."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Network

import pytest

from edgesim.load import load_topology
from edgesim.mitigation.control import infrastructure_warnings
from edgesim.mitigation.rules import RULE_ADAPTER
from edgesim.plan import LabPlan, build_plan
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.supervisor import Adopted, _runs
from edgesim.waiting import wait_until


@pytest.fixture(scope="module")
def plan() -> LabPlan:
    return build_plan(load_topology(DEFAULT_TOPOLOGY))


def test_tenant_traffic_is_refused_towards_the_infrastructure_services_and_tenants(plan: LabPlan) -> None:
    assert plan.tenancy is not None
    assert plan.tenancy.refused == {
        "198.18.0.0/15": "infrastructure",  # the infra pool 198.18.0.0/16 lies inside: not listed twice
        "198.51.100.0/24": "anycast",
        "192.0.2.0/24": "anycast",
        "203.0.113.0/24": "tenant",
    }
    (agent,) = [s for s in plan.nodes["edge1"].services if s.name == "tenants"]
    refusals = [agent.args[i + 1] for i, word in enumerate(agent.args) if word == "--refuse"]
    assert refusals == [f"{net}={why}" for net, why in plan.tenancy.refused.items()]


def test_each_xdp_agent_knows_its_control_session_with_the_router(plan: LabPlan) -> None:
    for edge in plan.nodes_with_role("edge"):
        (agent,) = [s for s in edge.services if s.name == "xdp"]
        uplink = edge.interface_to("router")
        peer = agent.args[agent.args.index("--control-peer") + 1]
        assert peer == f"{uplink.peer_address}={uplink.address.split('/')[0]}"


def rule(**fields: object):
    return RULE_ADAPTER.validate_python(fields)


def test_mitigate_add_warns_about_rules_that_cover_the_infrastructure(plan: LabPlan) -> None:
    everything = infrastructure_warnings(plan, rule(kind="drop_src", prefix=IPv4Network("0.0.0.0/0")))
    assert everything == [
        "drop_src 0.0.0.0/0 covers the lab's infrastructure range 198.18.0.0/15 (router links, management,"
        " backplane): BGP and BFD with the router still pass (they are checked before every rule), anything"
        " else from there is dropped",
        "drop_src 0.0.0.0/0 covers tenant site routers (acme 100.64.0.7, globex 100.64.0.9): their GRE"
        " tunnels carry nothing while it is in force",
    ]
    links = infrastructure_warnings(plan, rule(kind="drop_src", prefix="198.18.0.0/24"))
    assert len(links) == 1 and "198.18.0.0/15" in links[0]
    assert infrastructure_warnings(plan, rule(kind="drop_src", prefix="100.127.0.0/16")) == []
    bgp = infrastructure_warnings(plan, rule(kind="drop_port", proto="tcp", dst_port=179))
    assert bgp and "the port of BGP" in bgp[0] and "exempt" in bgp[0]
    assert infrastructure_warnings(plan, rule(kind="drop_port", proto="udp", dst_port=3784))
    assert infrastructure_warnings(plan, rule(kind="drop_port", proto="udp", src_port=53)) == []


def test_a_new_supervisor_takes_over_a_running_service_by_pid_and_command_line() -> None:
    argv = ["sleep", "30"]
    process = subprocess.Popen(argv)
    try:
        # Until the child has exec'd, its command line is still the forking Python's.
        assert wait_until(lambda: _runs(process.pid, argv), bool, timeout=5, interval=0.01).done
        assert not _runs(process.pid, ["sleep", "31"]), "a reused pid runs something else"
        adopted = Adopted(process.pid)
        assert adopted.poll() is None
    finally:
        process.kill()
        process.wait()
    assert adopted.poll() == -1 and adopted.returncode == -1
    assert not _runs(process.pid, argv)
