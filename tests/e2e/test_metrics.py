"""Seeing the lab: its Prometheus scrapes every exporter, counters rise during a bounded SYN flood, a
rule added at run time gets its series, captures decode, the picture has the plan's nodes, and the UI is
reachable from the host's loopback only."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from edgesim import runtime
from edgesim.lab import REPO_ROOT
from edgesim.metrics import client
from edgesim.metrics.capture import CaptureSpec, capture
from edgesim.metrics.graph import mermaid_nodes
from edgesim.metrics.hooks import ui_address
from edgesim.mitigation import control
from edgesim.plan import LabPlan
from edgesim.traffic import attacks
from edgesim.waiting import wait_until
from tests.e2e.conftest import E2E_LAB

pytestmark = [pytest.mark.root, pytest.mark.e2e]

COOKIES = 'edgesim_xdp_ddos_verdicts_total{verdict="cookie_sent"}'


def edges(plan: LabPlan) -> set[str]:
    return {n.name for n in plan.nodes_with_role("edge")}


def all_targets_up(plan: LabPlan) -> list[dict]:
    """Wait until Prometheus has scraped every planned target successfully; its targets then."""
    assert plan.metrics is not None
    wanted = {(t.job, t.node) for t in plan.metrics.targets}

    def up_ones() -> set[tuple[str, str]]:
        return {
            (t["labels"]["job"], t["labels"]["node"]) for t in client.targets(E2E_LAB) if t["health"] == "up"
        }

    wait_until(up_ones, lambda got: got == wanted, timeout=30, interval=0.5)
    return client.targets(E2E_LAB)


def test_prometheus_scrapes_every_exporter_of_every_edge(lab: LabPlan) -> None:
    targets = all_targets_up(lab)
    by_job: dict[str, set[str]] = {}
    for target in targets:
        assert target["health"] == "up", target
        by_job.setdefault(target["labels"]["job"], set()).add(target["labels"]["node"])
    assert by_job == {job: edges(lab) for job in ("xdp", "tenants", "dns", "dispatch")}
    # Families of every feature reach Prometheus, labelled by node.
    for family in (
        "edgesim_xdp_lb_packets_total",
        "edgesim_gre_packets_total",
        "edgesim_bgp_session_up",
        "edgesim_dns_filter_datagrams_total",
        "edgesim_dispatch_label_lookups_total",
    ):
        assert set(client.values(E2E_LAB, f"count by (node) ({family})", "node")) == edges(lab), family
    sessions = client.values(E2E_LAB, "min by (node) (edgesim_bgp_session_up)", "node")
    assert sessions == dict.fromkeys(edges(lab), 1.0)


def test_syn_flood_raises_cookie_counters_on_every_edge_and_a_new_rule_gets_its_series(lab: LabPlan) -> None:
    all_targets_up(lab)
    before = client.values(E2E_LAB, COOKIES, "node")
    assert set(before) == edges(lab)
    report = attacks.launch(lab, "syn-flood", pps=20_000, seconds=2.0)
    assert report.packets > 10_000
    # Every edge answered its share of the spoofed SYNs with cookies (at least a tenth of an even share).
    floor = report.packets / len(edges(lab)) / 10

    def rises() -> dict[str, float]:
        now = client.values(E2E_LAB, COOKIES, "node")
        return {edge: now.get(edge, 0.0) - before[edge] for edge in edges(lab)}

    got = wait_until(rises, lambda d: min(d.values()) >= floor, timeout=15, interval=0.5)
    assert got.done, f"cookie counters rose by {got.value}, wanted >= {floor:.0f} on every edge"
    rate = client.values(E2E_LAB, f"rate({COOKIES}[20s])", "node")
    assert all(rate[edge] > 0 for edge in edges(lab)), rate

    name = "mt-metrics-probe"
    control.add(E2E_LAB, control.parse_rule({"kind": "drop_src", "prefix": "100.127.255.0/24", "name": name}))
    try:
        query = f'edgesim_xdp_ddos_rule_packets_total{{rule="{name}"}}'
        seen = wait_until(
            lambda: set(client.values(E2E_LAB, query, "node")),
            lambda s: s == edges(lab),
            timeout=15,
            interval=0.5,
        )
        assert seen.done, f"series of the new rule on {seen.value}"
    finally:
        control.delete(E2E_LAB, name)


def _capture_while(spec: CaptureSpec, traffic, path: Path) -> None:
    """Run a capture in a thread while `traffic()` runs until it ends; the pcap must exist after."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            capture(E2E_LAB, spec, output=io.StringIO())
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.5)  # tshark starts capturing
    deadline = time.monotonic() + spec.seconds
    while thread.is_alive() and time.monotonic() < deadline:
        traffic()
        thread.join(timeout=0.2)
    thread.join()
    assert not errors, errors
    assert path.exists() and path.stat().st_size > 24


def _tshark(path: Path, fields: list[str]) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields"] + [w for f in fields for w in ("-e", f)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def test_capture_on_the_site_link_writes_gre_that_tshark_decodes(lab: LabPlan, tmp_path: Path) -> None:
    pcap = tmp_path / "site.pcap"
    spec = CaptureSpec("acme_gw", "eth-router", "ip proto 47", count=10, seconds=20, write=pcap)
    backend = runtime.backend(E2E_LAB)
    client1 = lab.nodes["client1"]

    def request() -> None:
        backend.run(
            client1, ["curl", "-s", "-m", "2", "-o", "/dev/null", "http://203.0.113.100/"], check=False
        )

    _capture_while(spec, request, pcap)
    rows = _tshark(pcap, ["ip.proto", "gre.proto", "ip.src", "ip.dst", "frame.protocols"])
    assert len(rows) == 10
    for proto, gre_proto, _src, _dst, layers in rows:
        assert proto.split(",")[0] == "47" and gre_proto == "0x0800", layers
        assert "gre:ip" in layers
    outer = {(r[2].split(",")[0], r[3].split(",")[0]) for r in rows}
    assert outer & {("192.0.2.1", "100.64.0.7"), ("100.64.0.7", "192.0.2.1")}


def test_capture_on_an_edge_uplink_shows_syn_ack_cookies(lab: LabPlan, tmp_path: Path) -> None:
    # XDP_TX frames leave the edge without passing its stack: they are seen at the other end of the uplink.
    pcap = tmp_path / "uplink.pcap"
    router = lab.nodes["router"]
    ifname = router.interface_to("edge1").name
    spec = CaptureSpec(
        "router", ifname, "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)", 5, 20, pcap
    )
    _capture_while(spec, lambda: attacks.launch(lab, "syn-flood", pps=5_000, seconds=1.0), pcap)
    rows = _tshark(pcap, ["tcp.flags.syn", "tcp.flags.ack", "ip.src", "tcp.srcport", "ip.dst"])
    assert len(rows) == 5
    for syn, ack, src, sport, dst in rows:
        assert (syn, ack) in {("1", "1"), ("True", "True")}
        assert src == "198.51.100.10" and sport == "80"
        assert dst.startswith("100.")


def test_graph_writes_a_png_and_a_mermaid_file_with_the_plans_nodes(lab: LabPlan, tmp_path: Path) -> None:
    for name in ("pop.png", "pop.mmd"):
        result = subprocess.run(
            [sys.executable, "-m", "edgesim", "graph", "--lab", E2E_LAB, "--output", str(tmp_path / name)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "pop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "pop.mmd").read_text()
    assert mermaid_nodes(text) == set(lab.nodes)
    assert "BGP Established" in text


def test_ui_is_relayed_on_the_hosts_loopback_only(lab: LabPlan) -> None:
    address = ui_address(runtime.state_dir(E2E_LAB))
    assert address is not None and address.startswith("127.0.0.1:")
    with urllib.request.urlopen(f"http://{address}/api/v1/status/buildinfo", timeout=5) as response:
        assert json.loads(response.read())["status"] == "success"
    result = subprocess.run(
        [sys.executable, "-m", "edgesim", "ui", "--lab", E2E_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == f"http://{address}/"
    # The relay listens on loopback only.
    listening = subprocess.run(
        ["ss", "-Hltn", f"sport = :{address.rsplit(':', 1)[1]}"], capture_output=True, text=True
    )
    assert listening.stdout.split()[3] == address


def test_metrics_task_prints_a_query_result(lab: LabPlan) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgesim", "metrics", "--lab", E2E_LAB, "count by (job) (up)"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "job=xdp" in result.stdout and "job=tenants" in result.stdout
