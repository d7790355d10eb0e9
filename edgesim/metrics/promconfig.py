"""The lab's Prometheus configuration, rendered from the plan (pure): one scrape job per exporting service,
each target labelled with its node, so families need no node label of their own."""

from __future__ import annotations

import yaml

from edgesim.plan import MetricsPlan


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render(metrics: MetricsPlan) -> str:
    """prometheus.yml for the lab."""
    jobs: dict[str, list[dict]] = {}
    for target in metrics.targets:
        jobs.setdefault(target.job, []).append({"targets": [target.address], "labels": {"node": target.node}})
    config = {
        "global": {
            "scrape_interval": _duration(metrics.scrape_interval_s),
            "scrape_timeout": _duration(metrics.scrape_interval_s * 0.75),
            "evaluation_interval": _duration(metrics.scrape_interval_s),
        },
        "scrape_configs": [{"job_name": job, "static_configs": static} for job, static in jobs.items()],
    }
    return "# Rendered by edgesim from the lab's plan; `up` rewrites it.\n" + yaml.safe_dump(
        config, sort_keys=False
    )
