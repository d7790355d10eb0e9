"""Metric families: every feature's names, types and labels against a golden list; the exposition; the
lab's prometheus.yml for the default topology against its golden file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from edgesim.features import parts
from edgesim.lab import DEFAULT_TOPOLOGY, load_plan
from edgesim.metrics import exporter, kernel, promconfig
from edgesim.metrics.families import Family, Source

GOLDEN = Path(__file__).parent / "metrics"


def all_families() -> list[Family]:
    """Every family an edgesim agent can export: each feature's metrics part, and the kernel's."""
    families = [f for _, module in parts("metrics") for f in module.FAMILIES]
    return [*families, *kernel.FAMILIES]


def check_golden(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual)
    assert actual == golden.read_text()


def test_every_feature_with_counters_has_a_metrics_part() -> None:
    assert [feature for feature, _ in parts("metrics")] == [
        "lb",
        "mitigation",
        "routing",
        "tenants",
        "dns",
        "dispatch",
    ]


def test_family_names_types_and_labels_match_the_golden_list() -> None:
    lines = [f"{f.name} {f.kind} {','.join(f.labels) or '-'}" for f in all_families()]
    check_golden("families.txt", "\n".join(lines) + "\n")


def test_names_are_unique_and_labels_bounded() -> None:
    families = all_families()
    assert len({f.name for f in families}) == len(families)
    # No label that grows with traffic (ebpf_exporter's rule): the allowed label names, all of them.
    # (`label` is a dispatch binding's label, planned; `outcome` and `result` are fixed sets in the code.)
    allowed = {"verdict", "rule", "kind", "tenant", "counter", "peer", "cpu", "label", "outcome", "result"}
    assert {label for f in families for label in f.labels} <= allowed


def test_a_counter_without_total_is_refused() -> None:
    for name, kind in (("edgesim_x", "counter"), ("edgesim_x_total", "gauge"), ("x_total", "counter")):
        try:
            Family(name, "help", kind=kind)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{name} as {kind} was accepted")


def test_exposition_has_every_family_with_its_samples() -> None:
    families = tuple(all_families())

    def read():
        for f in families:
            yield f.name, tuple(f"v{i}" for i in range(len(f.labels))), 7

    text = exporter.exposition(exporter.registry([Source(families, read)])).decode()
    parsed = {m.name: m for m in text_string_to_metric_families(text)}
    for f in families:
        base = f.name.removesuffix("_total") if f.kind == "counter" else f.name
        assert parsed[base].type == f.kind
        (sample,) = parsed[base].samples
        assert sample.name == f.name and sample.value == 7
        assert sample.labels == {label: f"v{i}" for i, label in enumerate(f.labels)}


def test_a_failing_source_exports_its_families_empty_and_others_still() -> None:
    ok = Family("edgesim_ok_total", "fine")
    bad = Family("edgesim_bad_total", "broken")

    def broken():
        yield bad.name, (), 1
        raise OSError("map gone")

    reg = exporter.registry([Source((bad,), broken), Source((ok,), lambda: [(ok.name, (), 3)])])
    parsed = {m.name: m for m in text_string_to_metric_families(exporter.exposition(reg).decode())}
    assert parsed["edgesim_bad"].samples == []
    assert parsed["edgesim_ok"].samples[0].value == 3


def test_prometheus_config_of_the_default_lab() -> None:
    plan = load_plan(DEFAULT_TOPOLOGY)
    assert plan.metrics is not None
    edges = {n.name for n in plan.nodes_with_role("edge")}
    assert {(t.job, t.node) for t in plan.metrics.targets} == {
        (job, edge) for job in ("xdp", "tenants", "dns", "dispatch") for edge in edges
    }
    check_golden("prometheus.yml", promconfig.render(plan.metrics))


def test_prometheus_accepts_the_config(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text((GOLDEN / "prometheus.yml").read_text())
    result = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_verdict_slot_of_the_dos_program_has_a_label() -> None:
    # A slot without one made the whole source fail (KeyError), and the family export nothing.
    from edgesim.mitigation import layout
    from edgesim.mitigation.metrics import VERDICT_LABELS

    assert set(VERDICT_LABELS) == set(layout.VERDICT_SLOTS)
    assert len(set(VERDICT_LABELS.values())) == len(VERDICT_LABELS)
