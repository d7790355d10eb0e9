"""Issue 17's hostile inputs, each a one-line error (never a traceback, never an action), and traffic only
inside the lab. Each test failed on the code before the fix it covers."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgesim import lab, paths, state
from edgesim.errors import EdgesimError
from edgesim.lab import REPO_ROOT
from edgesim.load import MAX_TOPOLOGY_BYTES, load_topology
from edgesim.mitigation import agent as xdp_agent
from edgesim.plan import LabPlan
from edgesim.tasks import ns
from edgesim.tenants import admin
from edgesim.tenants.rules import RuleError, parse_rule
from edgesim.traffic import attacks, http_probe, http_stream, long_lived
from edgesim.traffic.http_probe import Fetch, ProbeReport
from edgesim.traffic.targets import check_design_range, check_endpoint, check_target
from tests.unit.clirun import run_cli

DEFAULT = REPO_ROOT / "topology" / "default.yml"


@pytest.fixture
def plan() -> LabPlan:
    return lab.load_plan(DEFAULT, "sax")


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: LabPlan) -> LabPlan:
    """The default lab recorded as `up` records it, under a temporary state root (nothing of it exists)."""
    monkeypatch.setattr(paths, "STATE_ROOT", tmp_path)
    state.LabState(plan.lab).begin(plan, "digest", str(DEFAULT), "netns")
    state.LabState(plan.lab).mark("up")
    return plan


def one_line(call: Any, *args: Any) -> str:
    with pytest.raises(EdgesimError) as err:
        call(*args)
    (line,) = err.value.lines()
    return line


# --- item 3: traffic never leaves the lab's address plan ---------------------------------------------


@pytest.mark.parametrize("address", ["8.8.8.8", "10.0.0.1", "192.168.1.1", "198.51.100.99", "127.0.0.1"])
def test_a_target_outside_the_plan_is_refused(plan: LabPlan, address: str) -> None:
    line = one_line(check_target, plan, address)
    assert line.startswith(f"--vip: {address} is not an address of lab sax; traffic never leaves")
    assert "198.51.100.10" in line and "203.0.113.0/25" in line


@pytest.mark.parametrize("address", ["", "abc", "8.8.8", "::1", "198.51.100.10/32", None])
def test_a_target_that_is_no_address_is_refused(plan: LabPlan, address: object) -> None:
    assert "is not an IPv4 address" in one_line(check_target, plan, address)


def test_the_lab_own_addresses_are_targets(plan: LabPlan) -> None:
    router = plan.nodes["router"].interfaces[0].address.split("/")[0]
    for address in ("198.51.100.10", "203.0.113.100", "203.0.113.200", router, "192.0.2.1"):
        assert str(check_target(plan, address)) == address
    assert check_endpoint(plan, "198.51.100.10:80") == (check_target(plan, "198.51.100.10"), 80)
    for endpoint in ("198.51.100.10", "198.51.100.10:0", "198.51.100.10:x", "8.8.8.8:53"):
        one_line(check_endpoint, plan, endpoint)


def test_attack_at_an_address_outside_the_lab_sends_nothing(recorded: LabPlan) -> None:
    # Before the fix this reached netlink (and, in a running lab, trafgen); now it stops at the plan.
    line = one_line(attacks.launch, recorded, "syn-flood", 0, 1.0, "8.8.8.8")
    assert line.startswith("--vip: 8.8.8.8 is not an address of lab sax")
    assert not list((paths.STATE_ROOT / recorded.lab).glob("attack-*.cfg")), "no trafgen config written"


@pytest.mark.parametrize(
    ("kind", "pps", "seconds", "where"),
    [
        ("nope", 0, 1.0, "kind"),
        ("syn-flood", -1, 1.0, "--pps"),
        ("syn-flood", 0, 0.0, "--seconds"),
        ("syn-flood", 0, float("nan"), "--seconds"),
        ("syn-flood", 0, 121.0, "--seconds"),
    ],
)
def test_attack_arguments_are_checked_first(kind: str, pps: int, seconds: float, where: str) -> None:
    assert one_line(attacks.check_arguments, kind, pps, seconds).startswith(f"{where}: ")


def test_the_probes_refuse_a_target_outside_the_lab(recorded: LabPlan) -> None:
    line = one_line(http_probe.probe_from_node, recorded.lab, "client1", "8.8.8.8:80", 10)
    assert line.startswith("target: 8.8.8.8 is not an address of lab sax")
    one_line(http_probe.probe_from_node, recorded.lab, "client1", "198.51.100.10:80", -5)


@pytest.mark.parametrize("main", [http_probe.main, http_stream.main, long_lived.main])
def test_in_node_generators_refuse_addresses_outside_the_design(main: Any, capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--target", "8.8.8.8:80"])
    assert done.value.code == 2
    assert "8.8.8.8 is outside the lab's address ranges" in capsys.readouterr().err
    assert check_design_range("198.51.100.10:80") == ("198.51.100.10", 80)


# --- item 6: tenant rule add --position -----------------------------------------------------------


def test_position_is_parsed_as_a_number() -> None:
    task = ns.collections["tenant"].collections["rule"].tasks["add"]
    helps = dict(task.help)  # get_arguments pops them (test_tasks_help needs them afterwards)
    try:
        (position,) = [arg for arg in task.get_arguments() if arg.name == "position"]
    finally:
        task.help = helps
    assert position.kind is int  # it was str: `position - 1` raised TypeError


def test_a_rule_goes_where_position_says() -> None:
    rules = ["a accept", "b accept"]
    assert admin.insert_rule("acme", rules, "c", 1) == ["c", "a accept", "b accept"]
    assert admin.insert_rule("acme", rules, "c", 3) == ["a accept", "b accept", "c"]
    assert admin.insert_rule("acme", rules, "c", 0) == admin.insert_rule("acme", rules, "c", None)
    for position in (4, -1):
        assert one_line(admin.insert_rule, "acme", rules, "c", position).startswith("--position: ")
    assert "already has the rule" in one_line(admin.insert_rule, "acme", rules, "a accept", 1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--position", "-2"], "--position: -2 is not a rule number"),
        (["--position", "two"], "'two'"),
        ([], ""),
    ],
)
def test_rule_add_checks_its_input_before_acting(argv: list[str], message: str) -> None:
    result = run_cli(["tenant", "rule", "add", "acme", "tcp dport { 8080 } accept }", *argv, "--lab", "sax"])
    assert result.code == 1 and "Traceback" not in result.stderr
    assert message in result.stderr
    if not argv:
        assert "a '}' without its '{'" in result.stderr


# --- item 7: the smaller ones ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "tcp dport { 8080 } accept }",
        "tcp dport { 80 accept",
        "{ tcp dport 80 } accept",
        "tcp dport {{80}} accept",
        "ip daddr { 203.0.113.1 } accept",
        "} accept",
        "tcp dport { 80 } { 81 } accept",
    ],
)
def test_unbalanced_or_misplaced_braces_are_refused(text: str) -> None:
    with pytest.raises(RuleError):
        parse_rule(text)
    assert parse_rule("tcp dport { 80, 443 } accept").text() == "tcp dport { 80, 443 } accept"


def test_a_binary_topology_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "topology.yml"
    path.write_bytes(b"lab: x\n\x9a\xff\x00\x01binary")
    assert one_line(load_topology, path) == (
        f"{path}: byte 7: the file is not UTF-8 text (a binary file?) "
        "(hint: a topology is a YAML text file, e.g. topology/default.yml)"
    )


def test_a_huge_topology_is_refused_without_parsing_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    path.write_text("lab: x\n" + "# padding\n" * (MAX_TOPOLOGY_BYTES // 10 + 10))
    started = time.monotonic()
    assert one_line(load_topology, path) == (
        f"{path}: (file): the file is larger than 1024 KiB (hint: a topology is a few KB of YAML; is this "
        "the right file?)"
    )
    assert time.monotonic() - started < 5, "refused by size, not after parsing"


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yml"
    path.write_text("lab: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "nested too deeply" in one_line(load_topology, path)


def test_schema_errors_do_not_hide_the_semantic_ones(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yml"
    path.write_text(
        "lab: mixed\n"
        "vips: [{address: 198.51.100.10, ports: [80, 70000]}]\n"
        "nodes: {router: {role: router}, edge1: {role: edge}, client1: {role: host}}\n"
        "links: [{endpoints: [router, edge1]}, {endpoints: [router, client1]},\n"
        "        {endpoints: [router, nobody]}]\n"
    )
    with pytest.raises(EdgesimError) as err:
        load_topology(path)
    assert [str(p) for p in err.value.problems] == [
        "vips[0].ports[1]: input should be less than or equal to 65535 (hint: ports are 1-65535)",
        "links[2].endpoints: unknown node 'nobody' (hint: define it under `nodes` first)",
    ]


def test_the_no_link_hint_is_printed_whole(tmp_path: Path) -> None:
    path = tmp_path / "nolink.yml"
    path.write_text(
        "lab: nolink\nvips: [{address: 198.51.100.10}]\n"
        "nodes: {router: {role: router}, edge1: {role: edge}, client1: {role: host}}\n"
        "links: [{endpoints: [router, edge1]}]\n"
    )
    result = run_cli(["plan", "--topology", str(path)])
    assert result.code == 1
    # rich took `[router, client1]` for a style tag and printed "add `- endpoints: `".
    assert result.stderr.strip() == (
        f"error: {path}: nodes.client1: has no link to the router "
        "(hint: add `- endpoints: [router, client1]`)"
    )


def test_pool_exhaustion_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    edges = "".join(f"  edge{i}: {{role: edge}}\n" for i in range(200))
    path.write_text(
        f"lab: big\nvips: [{{address: 198.51.100.10}}]\nnodes:\n  router: {{role: router}}\n{edges}"
    )
    line = one_line(lab.load_plan, path)
    assert line.startswith(f"{path}: pools.infra: ") and "no /31 left" in line


def test_load_refuses_a_negative_count_and_never_says_nan() -> None:
    result = run_cli(["load", "--requests", "-5", "--lab", "sax"])
    assert result.code == 1
    assert result.stderr.strip() == "error: --requests: must be 1 or more (hint: e.g. --requests 1000)"
    assert "nan" not in ProbeReport("x:80", []).summary()
    assert "nan" not in ProbeReport("x:80", [Fetch(None, None, 1.0, "TimeoutError")]).summary()


class _SlowAgent:
    """Answers `status` after the client has gone (what a timed-out `invoke mitigate stats` does)."""

    def status(self) -> dict[str, Any]:
        time.sleep(0.3)
        return {"pad": "x" * 200_000}

    reload = stats = lb_reload = lb_stats = lb_summary = status


def test_an_agent_whose_client_left_early_logs_no_traceback(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "xdp.sock"
    server = xdp_agent.serve(_SlowAgent(), path)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": "status"}).encode() + b"\n")
        time.sleep(0.6)
        # The agent still answers the next client.
        assert xdp_agent.request(path, "status", timeout=5.0)["ok"] is True
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
