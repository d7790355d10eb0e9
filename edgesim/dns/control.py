"""Change and read a running lab's DNS: the per-source limit (file, then every edge reloads), the counters.

`counters(lab)` is the plain per-edge, per-source view of the filter's maps that metrics can read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgesim import agentsocket, runtime
from edgesim.dns.section import DnsLimit
from edgesim.errors import EdgesimError, Problem
from edgesim.files import atomic_write_json
from edgesim.plan import DnsPlan


def dns_plan(lab: str) -> DnsPlan:
    """The running lab's DNS plan, or an error saying the lab has no DNS."""
    plan = runtime.running_plan(lab).dns
    if plan is None:
        raise EdgesimError(Problem(f"lab {lab}", "has no DNS", "add a `dns:` section to its topology"))
    return plan


def request(path: Path, op: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
    """Send one request to an edge's DNS service and return its answer (EdgesimError when it cannot)."""
    return agentsocket.request(path, "DNS service", "is the lab up?", op, timeout, **fields)


def _each_edge(lab: str, op: str, **fields: Any) -> dict[str, dict[str, Any]]:
    plan, root = dns_plan(lab), runtime.state_dir(lab)
    edges = list(plan.sockets)
    # In parallel: a new limit reaches every edge within one round trip.
    with ThreadPoolExecutor(max_workers=len(edges) or 1) as pool:
        answers = pool.map(lambda e: request(root / plan.sockets[e], op, **fields), edges)
        return dict(zip(edges, answers, strict=True))


def parse_limit(rate: int, burst: int, enabled: bool) -> DnsLimit:
    """A limit from command-line values; errors name the option to fix."""
    try:
        return DnsLimit(rate=rate, burst=burst, enabled=enabled)
    except ValidationError as err:
        raise EdgesimError(
            [Problem(f"--{e['loc'][0]}", e["msg"], "see `edgesim dns limit --help`") for e in err.errors()]
        ) from None


def current_limit(lab: str) -> DnsLimit:
    """The limit in force: the one set at run time, else the planned one."""
    plan = dns_plan(lab)
    path = runtime.state_dir(lab) / plan.limit_file
    if path.exists():
        return DnsLimit.model_validate_json(path.read_text())
    return DnsLimit(rate=plan.rate, burst=plan.burst, enabled=plan.enabled)


def set_limit(lab: str, limit: DnsLimit) -> dict[str, dict[str, Any]]:
    """Store the limit and have every edge put it in force (a map update: the filter stays attached)."""
    plan = dns_plan(lab)
    atomic_write_json(runtime.state_dir(lab) / plan.limit_file, limit.model_dump())
    return _each_edge(lab, "reload")


def stats(lab: str, top: int = 10) -> dict[str, dict[str, Any]]:
    """Per edge: the limit, the filter's totals, its top sources by drops, queries answered, socket drops."""
    return _each_edge(lab, "stats", top=top)


def counters(lab: str) -> dict[str, dict[str, Any]]:
    """Per edge: every tracked source's passed and dropped datagrams, the filter's totals, socket drops."""
    answers = _each_edge(lab, "stats", top=1_000_000)
    return {
        edge: {
            "sources": {s["address"]: {"passed": s["passed"], "dropped": s["dropped"]} for s in a["top"]},
            "filter": a["filter"],
            "rx_drops": a["rx_drops"],
            "queries": a["queries"],
        }
        for edge, a in answers.items()
    }
