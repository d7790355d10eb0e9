"""Metrics benchmark, side by side in one run: what a scrape costs each exporter, and the memory of the
processes the metrics feature adds, against an agent's.

1. Per target (the XDP agent's and the tenant agent's /metrics on every edge): median and p90 time of a
   scrape from the management node, its size, and the agent's CPU time per scrape (/proc utime+stime).
2. Resident memory of Prometheus, the UI relay and one XDP agent.

Run as root: `.venv/bin/python bench/metrics.py --lab NAME` against a running lab (`edgesim up`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time
from http.client import HTTPConnection
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgesim import runtime

console = Console(width=140)
SCRAPES = 50
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _scrape(backend, node, address: str) -> tuple[float, int]:
    host, port = address.rsplit(":", 1)
    with backend.enter(node):
        sock = socket.create_connection((host, int(port)), timeout=5)
    started = time.perf_counter()
    conn = HTTPConnection(host, int(port), timeout=5)
    conn.sock = sock
    conn.request("GET", "/metrics")
    body = conn.getresponse().read()
    conn.close()
    return time.perf_counter() - started, len(body)


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True)
    lab = parser.parse_args().lab
    plan = runtime.running_plan(lab)
    assert plan.metrics is not None, "the lab runs no Prometheus"
    backend = runtime.backend(lab)
    mgmt = plan.nodes[plan.metrics.node]
    services = runtime.lab_state(lab).services()
    columns = ("job", "node", "median ms", "p90 ms", "bytes", "agent CPU ms/scrape")
    table = Table(*columns, title="one /metrics scrape")
    for target in plan.metrics.targets:
        pid = services[f"{target.node}/{target.job}"]["pid"]
        before = _cpu_s(pid)
        times, size = [], 0
        for _ in range(SCRAPES):
            took, size = _scrape(backend, mgmt, target.address)
            times.append(took)
        cpu = (_cpu_s(pid) - before) / SCRAPES
        p90 = statistics.quantiles(times, n=10)[-1]
        table.add_row(target.job, target.node, f"{1000 * statistics.median(times):.1f}", f"{1000 * p90:.1f}",
                      f"{size:,}", f"{1000 * cpu:.1f}")  # fmt: skip
    console.print(table)
    memory = Table("process", "RSS MiB", title="resident memory")
    relay_pid = json.loads((runtime.state_dir(lab) / plan.metrics.ui_record).read_text())["pid"]
    rows = [("prometheus (mgmt)", services[f"{mgmt.name}/prometheus"]["pid"]), ("UI relay (host)", relay_pid)]
    rows.append(("XDP agent edge1 (for comparison)", services["edge1/xdp"]["pid"]))
    for name, pid in rows:
        memory.add_row(name, f"{_rss_mib(pid):.0f}")
    console.print(memory)


if __name__ == "__main__":
    main()
