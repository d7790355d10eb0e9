"""Metrics: every agent's BPF maps and kernel counters as Prometheus families, a Prometheus per lab, views."""
