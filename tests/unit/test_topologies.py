"""The shipped topologies load, plan, and validate against the exported JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from edgesim.lab import REPO_ROOT
from edgesim.load import load_topology
from edgesim.model import Topology
from edgesim.plan import build_plan

SHIPPED = sorted((REPO_ROOT / "topology").glob("*.yml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_topology_plans(path: Path) -> None:
    plan = build_plan(load_topology(path))
    assert plan.nodes, path


def test_default_topology_is_the_demo_pop() -> None:
    plan = build_plan(load_topology(REPO_ROOT / "topology" / "default.yml"))
    assert [n.name for n in plan.nodes_with_role("edge")] == ["edge1", "edge2", "edge3", "edge4"]
    assert {n.name for n in plan.nodes_with_role("host")} == {"client1", "client2", "attacker", "origin"}
    # The edges' TCP proxy on VIP:8080, to the origin server on the origin host; DNS on the VIPs' udp/53;
    # socket dispatch's agent, the all-ports proxy and two services sharing port 80.
    services = {s.name for s in plan.nodes["edge1"].services}
    assert services == {
        "http",
        "xdp",
        "bird",
        "proxy",
        "tenants",
        "dns",
        "dispatch",
        "spectrum",
        "web-a",
        "web-b",
    }
    origin = plan.nodes["origin"]
    assert origin.services[0].listens == [f"{origin.interfaces[0].address.split('/')[0]}:9000"]
    assert plan.vips == ["198.51.100.10"]


def test_schema_export_is_valid_json_schema() -> None:
    schema = Topology.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"lab", "vips", "nodes"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_topologies_validate_against_the_schema(path: Path) -> None:
    schema = json.loads(json.dumps(Topology.model_json_schema()))
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_schema_rejects_what_load_rejects() -> None:
    schema = Topology.model_json_schema()
    bad = {"lab": "x", "vips": [{"address": "198.51.100.10"}], "nodes": {"r": {"role": "router", "x": 1}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
