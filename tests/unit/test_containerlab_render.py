"""The containerlab file edgesim renders: valid by containerlab's official schema, faithful to the plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import regex
import yaml
from jsonschema import validators
from jsonschema.exceptions import ValidationError

from edgesim import lab as lab_api
from edgesim.backends.containerlab.render import NODE_IMAGE, mgmt_subnet, render, render_text
from edgesim.plan import LabPlan

HERE = Path(__file__).parent / "containerlab"
TOPOLOGIES = sorted((lab_api.REPO_ROOT / "topology").glob("*.yml"))
RFC1918 = [IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    # The schema's patterns are ECMAScript (`\p{L}`), which Python's `re` refuses; `regex` reads them.
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SCHEMA = json.loads((HERE / "clab.schema.json").read_text())
Validator = validators.extend(validators.validator_for(SCHEMA), {"pattern": _ecma_pattern})


def schema_errors(document: dict[str, Any]) -> list[str]:
    errors = Validator(SCHEMA).iter_errors(document)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def plan_of(path: Path) -> LabPlan:
    return lab_api.load_plan(str(path), None)


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.stem)
def test_every_topology_renders_to_a_schema_valid_file(topology: Path) -> None:
    text = render_text(plan_of(topology), NODE_IMAGE)
    assert schema_errors(yaml.safe_load(text)) == []


def test_the_validator_does_refuse_what_the_schema_forbids() -> None:
    document = render(plan_of(TOPOLOGIES[0]), NODE_IMAGE)
    document["topology"]["nodes"]["router"]["kind"] = "not-a-kind"
    document["topology"]["nodes"]["-starts-with-a-dash"] = {"kind": "linux"}
    assert len(schema_errors(document)) == 2


def test_the_default_topology_matches_its_golden_file() -> None:
    golden = HERE / "default.clab.yml"
    assert render_text(plan_of(lab_api.REPO_ROOT / "topology/default.yml"), NODE_IMAGE) == golden.read_text()


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.stem)
def test_every_node_and_link_of_the_plan_is_rendered_with_its_interface_names(topology: Path) -> None:
    plan = plan_of(topology)
    document = render(plan, NODE_IMAGE)
    nodes = document["topology"]["nodes"]
    expected = set(plan.nodes) | ({"backplane"} if plan.backplane else set())
    assert set(nodes) == expected
    links = document["topology"]["links"]
    rendered = {frozenset((e["node"], e["interface"]) for e in link["endpoints"]) for link in links}
    for link in plan.links:
        assert frozenset({(e.node, e.ifname) for e in (link.a, link.b)}) in rendered
    for port in plan.backplane.ports if plan.backplane else []:
        assert frozenset({(port.edge, port.ifname), ("backplane", port.bridge_port)}) in rendered
    for name, node in nodes.items():
        assert node["labels"]["edgesim.lab"] == plan.lab, name


@pytest.mark.parametrize("lab", ["pop", "etest", "a", "z" * 12, "sa", "sb"])
def test_the_management_network_stays_in_198_19_0_0_16_and_off_dockers_bridge(lab: str) -> None:
    subnet = mgmt_subnet(lab)
    assert subnet.subnet_of(IPv4Network("198.19.0.0/16")) and subnet.prefixlen == 24
    assert subnet != IPv4Network("198.19.0.0/24")
    assert not any(subnet.overlaps(private) for private in RFC1918)
    assert mgmt_subnet(lab) == subnet


def test_nodes_have_no_management_interface_and_never_restart_by_themselves() -> None:
    linux = render(plan_of(TOPOLOGIES[0]), NODE_IMAGE)["topology"]["kinds"]["linux"]
    assert linux["network-mode"] == "none" and linux["restart-policy"] == "no"
    assert "privileged" not in linux and "SYS_RESOURCE" not in linux["cap-add"]
