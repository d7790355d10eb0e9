"""XDP DoS mitigation end to end: real floods from the attacker, real HTTP load from client1, through the
router's ECMP to the four edges; asserting on what the clients got, the XDP counters and the edges' stacks."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from edgesim import namespaces
from edgesim.lab import REPO_ROOT
from edgesim.mitigation import control
from edgesim.mitigation.rules import RULE_ADAPTER
from edgesim.plan import LabPlan
from edgesim.probes import stackstats
from edgesim.routing.status import bgp_status
from edgesim.traffic import attacks
from edgesim.traffic.http_probe import ProbeReport, probe_from_node
from tests.e2e.conftest import E2E_LAB

ATTACK_SECONDS = 40.0  # at most: the flood stops as soon as the clients' load is done
FAILURE_DEMO_SECONDS = 2.0
LOAD_REQUESTS = 2500  # the issue asks for at least 2,000 during the attack
MIN_SUCCESS = 0.999
MIN_STOPPED = 0.95


@dataclass
class Case:
    """An attack, the counters that show it stopped, and what to remove to show the test can fail."""

    kind: str
    rules: list[str]  # rule names whose counters hold the stopped packets
    verdicts: list[str] = field(default_factory=list)  # built-in verdicts that hold stopped packets
    stack_counter: str = ""  # SNMP counter that moves when the packets reach the edges' stacks


CASES = [
    Case("syn-flood", ["vip-syn-cookies"], stack_counter="TcpExtSyncookiesSent"),
    Case("udp-reflection", ["dns-reflection", "ntp-reflection"], stack_counter="UdpNoPorts"),
    Case("udp-flood", ["udp-per-source"], stack_counter="UdpNoPorts"),
    Case("icmp-flood", ["icmp-per-source"], stack_counter="IcmpInEchos"),
    Case("malformed", ["malformed"], ["malformed (dropped)"], stack_counter="IpReasmReqds"),
]


# How long the drop-everything rule stays in force while the sessions are watched: BFD would notice a cut
# within 0.3 s, BGP's hold time within 3 s.
HOLD_S = 4.0


def edges(lab: LabPlan) -> list[str]:
    return [n.netns for n in lab.nodes_with_role("edge")]


def stopped(before: dict, after: dict, case: Case) -> int:
    """Packets counted by the case's rules and verdicts, summed over edges."""
    total = 0
    for edge, now in after.items():
        then = before[edge]
        for index, rule in enumerate(now["rules"]):
            if rule["name"] in case.rules:
                total += rule["packets"] - then["rules"][index]["packets"]
        for verdict in case.verdicts:
            total += now["verdicts"][verdict][0] - then["verdicts"][verdict][0]
    return total


def passed(before: dict, after: dict) -> int:
    return sum(after[e]["verdicts"]["passed"][0] - before[e]["verdicts"]["passed"][0] for e in after)


def _scrapes_since(lab: LabPlan, since: float) -> float:
    """At most how many scrapes of the edges' exporters Prometheus made since `since` (monotonic)."""
    if lab.metrics is None:
        return 0.0
    rounds = (time.monotonic() - since) / lab.metrics.scrape_interval_s + 1
    return len(lab.metrics.targets) * rounds


def stack_delta(lab: LabPlan, counter: str, before: dict[str, dict[str, int]]) -> int:
    return sum(stackstats.snmp(ns)[counter] - before[ns][counter] for ns in edges(lab))


def stack_snapshot(lab: LabPlan) -> dict[str, dict[str, int]]:
    return {ns: stackstats.snmp(ns) for ns in edges(lab)}


class Background(threading.Thread):
    """Run an attack in the background and keep its report."""

    def __init__(self, lab: LabPlan, kind: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.lab, self.kind, self.seconds = lab, kind, seconds
        self.stop = threading.Event()
        self.report: attacks.AttackReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = attacks.launch(self.lab, self.kind, 0, self.seconds, stop=self.stop)
        except BaseException as err:  # re-raised in the test's thread
            self.error = err

    def result(self) -> attacks.AttackReport:
        self.join(timeout=self.seconds + 30)
        if self.error:
            raise self.error
        assert self.report is not None
        return self.report


def client2_answers(lab: LabPlan) -> bool:
    """One quick TCP connection from client2 to the VIP."""
    try:
        with namespaces.inside(lab.nodes["client2"].netns):
            sock = socket.create_connection((lab.vips[0], 80), timeout=0.3)
        sock.close()
        return True
    except OSError:
        return False


def seconds_until(condition, limit: float = 5.0) -> float:
    """Seconds until `condition` holds (polled every 50 ms), failing after `limit`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, "the change never took effect"
        time.sleep(0.05)
    return time.monotonic() - started


# The run-time rule change goes first: it claims that changing a rule leaves other traffic untouched, and
# after the unprotected floods below (test_without_the_rule_*) the edges still hold thousands of half-open
# handshakes for a minute; measured there, 2 to 5 of its 1,500 connections timed out in most full runs, on
# the code before the architecture change as well (a flood's after-effect, not the rule change's).
def test_rule_added_and_removed_at_run_time_within_a_second(lab: LabPlan, rules_restored) -> None:
    address = lab.nodes["client2"].interfaces[0].address.split("/")[0]
    other_traffic: list[ProbeReport] = []
    background = threading.Thread(
        target=lambda: other_traffic.append(
            probe_from_node(E2E_LAB, "client1", f"{lab.vips[0]}:80", 1500, 8, hold=False)
        )
    )
    assert client2_answers(lab)
    background.start()
    rule = RULE_ADAPTER.validate_python(
        {"kind": "drop_src", "prefix": f"{address}/32", "name": "block-client2"}
    )
    started = time.monotonic()
    control.add(E2E_LAB, rule)
    seconds_until(lambda: not client2_answers(lab))
    blocked_after = time.monotonic() - started
    time.sleep(0.5)
    started = time.monotonic()
    control.delete(E2E_LAB, "block-client2")
    seconds_until(lambda: client2_answers(lab))
    restored_after = time.monotonic() - started
    background.join()
    assert blocked_after <= 1.0, f"blocking took {blocked_after:.2f} s"
    assert restored_after <= 1.0, f"unblocking took {restored_after:.2f} s"
    assert other_traffic, "client1's load did not report"
    errors = [f.error for f in other_traffic[0].fetches if f.error]
    assert errors == [], f"client1's traffic must not notice: {errors[:3]}"


def test_drop_everything_cannot_cut_bgp_or_bfd(lab: LabPlan, rules_restored) -> None:
    """Issue 17: `mitigate add drop_src --prefix 0.0.0.0/0` is refused nothing, warns, and drops every
    client; the lab's own BGP and BFD sessions with the router stay Established and Up all the while."""
    before = bgp_status(E2E_LAB).sessions
    assert [(s.bgp_state, s.bfd_state) for s in before] == [("Established", "Up")] * len(before)
    cli = [sys.executable, "-m", "edgesim", "mitigate", "add", "drop_src", "--prefix", "0.0.0.0/0"]
    added = subprocess.run(
        [*cli, "--name", "everything", "--lab", E2E_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = " ".join((added.stdout + added.stderr).split())
    try:
        assert added.returncode == 0, output
        assert "warning: everything covers the lab's infrastructure range 198.18.0.0/15" in output, output
        assert "BGP and BFD with the router still pass" in output, output
        assert "covers tenant site routers (acme 100.64.0.7, globex 100.64.0.9)" in output, output
        seconds_until(lambda: not client2_answers(lab))
        samples = []
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            samples.append(
                [(s.edge, s.bgp_state, s.bfd_state, s.since) for s in bgp_status(E2E_LAB).sessions]
            )
            time.sleep(0.2)
        dropped = sum(
            rule["packets"]
            for per in control.stats(E2E_LAB).values()
            for rule in per["rules"]
            if rule["name"] == "everything"
        )
    finally:
        control.delete(E2E_LAB, "everything")
    established = [(s.edge, "Established", "Up", s.since) for s in before]
    flapped = [sample for sample in samples if sample != established]
    assert len(samples) >= HOLD_S / 0.5 and flapped == [], f"sessions changed under the rule: {flapped[:2]}"
    assert dropped >= 1, "the rule dropped nothing"
    seconds_until(lambda: client2_answers(lab))
    assert bgp_status(E2E_LAB).healthy


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_attack_is_stopped_in_xdp_while_clients_are_served(lab: LabPlan, case: Case, rules_restored) -> None:
    before = control.stats(E2E_LAB)
    opens_before = stack_snapshot(lab)
    counted_since = time.monotonic()
    flood = Background(lab, case.kind, ATTACK_SECONDS)
    flood.start()
    time.sleep(1.0)  # the flood is at full rate before the clients start
    load_started = time.time()
    syn_recv: list[int] = []

    client = lab.nodes["client1"].interfaces[0].address.split("/")[0]

    def sample_syn_recv() -> None:
        # The clients' own handshakes pass through SYN-RECV for a moment (synproxy opening the connection
        # to the server on their behalf); any other source's would be the flood's.
        for _ in range(5):
            peers = [stackstats.peers_in_state(ns, "SYN_RECV") for ns in edges(lab)]
            syn_recv.append(sum(n for counts in peers for peer, n in counts.items() if peer != client))
            time.sleep(0.3)

    sampler = threading.Thread(target=sample_syn_recv)
    sampler.start()
    load: ProbeReport = probe_from_node(
        E2E_LAB, "client1", f"{lab.vips[0]}:80", LOAD_REQUESTS, 32, hold=False
    )
    load_ended = time.time()
    time.sleep(0.2)
    flood.stop.set()
    sampler.join()
    report = flood.result()
    after = control.stats(E2E_LAB)

    assert report.started < load_started and load_ended < report.ended, "the load ran inside the attack"
    assert report.packets > 100_000, f"the generator reached only {report.pps:.0f} pps"
    assert len(load.fetches) >= 2000
    assert load.success_rate >= MIN_SUCCESS, load.summary()
    legit_syns = LOAD_REQUESTS if case.kind == "syn-flood" else 0  # client SYNs are answered with cookies too
    blocked = stopped(before, after, case) - legit_syns
    assert blocked >= MIN_STOPPED * report.packets, f"XDP stopped {blocked} of {report.packets} packets"
    if case.kind == "syn-flood":
        assert syn_recv and max(syn_recv) == 0, f"SYN-RECV sockets of attack sources on the edges: {syn_recv}"
        opened = stack_delta(lab, "TcpPassiveOpens", opens_before)
        # Only the clients' proven handshakes reach the service's socket (synproxy opens one per request),
        # besides the lab's own: Prometheus opens one connection per scrape of each edge exporter.
        scrapes = _scrapes_since(lab, counted_since)
        assert opened <= LOAD_REQUESTS + 50 + scrapes, (
            f"{opened} connections opened for {LOAD_REQUESTS} requests and {scrapes:.0f} scrapes"
        )


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_without_the_rule_the_attack_reaches_the_stack(lab: LabPlan, case: Case, rules_restored) -> None:
    for name in case.rules:
        control.delete(E2E_LAB, name)
    before = control.stats(E2E_LAB)
    stack_before = stack_snapshot(lab)
    report = attacks.launch(lab, case.kind, 0, FAILURE_DEMO_SECONDS)
    after = control.stats(E2E_LAB)
    reached = passed(before, after)
    in_stack = stack_delta(lab, case.stack_counter, stack_before)
    summary = f"{report.packets} sent, {reached} passed, +{in_stack} {case.stack_counter}"
    print(f"{case.kind} without its rule: {summary}")
    # Without the rule, XDP passes the flood: the edges' stacks take it (and, overloaded, drop part of it
    # before XDP even runs, which is why not every packet sent shows up here).
    assert stopped(before, after, Case(case.kind, case.rules)) == 0, (
        "the rule is gone: nothing may count on it"
    )
    assert reached >= 0.2 * report.packets, f"only {reached} of {report.packets} packets passed XDP"
    assert in_stack >= 0.1 * report.packets, f"{case.stack_counter} moved by only {in_stack}"
