"""Ask a running lab's Prometheus: PromQL queries and its scrape targets, over HTTP from a thread that
has entered the management node (no route to the lab from the host is needed)."""

from __future__ import annotations

import json
import socket
import urllib.parse
from http.client import HTTPConnection
from typing import Any

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import MetricsPlan

TIMEOUT_S = 5.0


def _metrics_plan(lab: str) -> MetricsPlan:
    plan = runtime.running_plan(lab)
    if plan.metrics is None:
        raise EdgesimError(
            Problem(
                f"lab {lab}", "runs no Prometheus", "metrics need a management node (a topology with tenants)"
            )
        )
    return plan.metrics


def api(lab: str, path: str, params: dict[str, str] | None = None) -> Any:
    """GET one Prometheus API path (e.g. `/api/v1/query`) and return its `data`; errors as EdgesimError."""
    metrics = _metrics_plan(lab)
    node = runtime.node_plan(lab, metrics.node)
    host, port = metrics.listen.rsplit(":", 1)
    url = path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with runtime.backend(lab).enter(node):
            # Opened inside the node; it stays there after the block.
            sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        conn = HTTPConnection(host, int(port), timeout=TIMEOUT_S)
        conn.sock = sock
        conn.request("GET", url)
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
    except (OSError, ValueError) as err:
        raise EdgesimError(
            Problem(f"Prometheus of lab {lab}", f"did not answer {path}: {err}", "see `edgesim status`")
        ) from None
    if body.get("status") != "success":
        raise EdgesimError(Problem("query", f"Prometheus refused it: {body.get('error', body)}"))
    return body["data"]


def query(lab: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query's result (at Unix time `at`, default now): a list of {metric, value: [time, "v"]}."""
    params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    data = api(lab, "/api/v1/query", params)
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return list(data["result"])


def values(lab: str, promql: str, by: str, at: float | None = None) -> dict[str, float]:
    """An instant vector's values keyed by one label (e.g. `node`)."""
    return {row["metric"].get(by, ""): float(row["value"][1]) for row in query(lab, promql, at)}


def targets(lab: str) -> list[dict[str, Any]]:
    """The active scrape targets: labels, health (up/down/unknown), last error."""
    return list(api(lab, "/api/v1/targets", {"state": "active"})["activeTargets"])
