"""Metrics' part of the plan: a Prometheus in the management node scraping every service that serves
/metrics (a ServicePlan's `metrics`), and the host's loopback relay to its UI. Pure.

Runs last (FEATURES order), so it sees every feature's services: a feature that adds an exporting
service only sets `metrics=` on its ServicePlan.
"""

from __future__ import annotations

import zlib

from edgesim.model import MGMT_NODE
from edgesim.plan.builder import PlanBuilder
from edgesim.plan.records import MetricsPlan, ScrapeTarget, ServicePlan

PROMETHEUS_LISTEN = "127.0.0.1:9090"  # inside the management node: its own loopback, no collision
PROMETHEUS_DIR = "prometheus"
PROMETHEUS_CONFIG = f"{PROMETHEUS_DIR}/prometheus.yml"
PROMETHEUS_DATA = f"{PROMETHEUS_DIR}/data"
SCRAPE_INTERVAL_S = 2.0  # a live view wants fresh rates; 8 small targets cost little
RETENTION = "6h"  # a demo lab's lifetime; keeps the TSDB small
RELAY_MODULE = "edgesim.metrics.relay"
UI_RECORD = "ui.json"
# The relay's first choice of port on the host's 127.0.0.1: spread by lab name, since other labs run on this
# machine at the same time (the relay takes the next free port when it is taken, and records which).
UI_PORT_BASE, UI_PORT_SPAN = 29090, 900


def ui_port(lab: str) -> int:
    """The lab's first-choice UI port on the host's loopback."""
    return UI_PORT_BASE + zlib.crc32(lab.encode()) % UI_PORT_SPAN


def plan_nodes(b: PlanBuilder) -> None:
    """Prometheus in the management node and its targets; the UI relay on the host (labs with a mgmt node)."""
    if MGMT_NODE not in b.nodes:
        return
    targets = [
        ScrapeTarget(job=svc.name, node=node.name, address=svc.metrics)
        for node in b.nodes.values()
        for svc in node.services
        if svc.metrics is not None
    ]
    args = [
        "prometheus",
        f"--config.file={PROMETHEUS_CONFIG}",
        f"--storage.tsdb.path={PROMETHEUS_DATA}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={PROMETHEUS_LISTEN}",
        "--log.level=warn",
    ]
    b.nodes[MGMT_NODE].services.append(
        ServicePlan(name="prometheus", module=None, args=args, listens=[PROMETHEUS_LISTEN])
    )
    port = ui_port(b.lab)
    relay = [
        "--lab", b.lab, "--node", MGMT_NODE, "--target", PROMETHEUS_LISTEN,
        "--port", str(port), "--record", UI_RECORD,
    ]  # fmt: skip
    b.sections["host_services"] = [ServicePlan(name="ui-relay", module=RELAY_MODULE, args=relay, listens=[])]
    b.sections["metrics"] = MetricsPlan(
        node=MGMT_NODE,
        listen=PROMETHEUS_LISTEN,
        config=PROMETHEUS_CONFIG,
        data=PROMETHEUS_DATA,
        scrape_interval_s=SCRAPE_INTERVAL_S,
        targets=targets,
        ui_port=port,
        ui_record=UI_RECORD,
    )
