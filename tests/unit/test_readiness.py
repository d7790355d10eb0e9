"""Readiness: a service the supervisor gave up on fails `up` at once, not at the deadline."""

from __future__ import annotations

import json
import time

import pytest

from edgesim import paths, readiness
from edgesim.backends.netns import NetnsBackend
from edgesim.errors import EdgesimError
from edgesim.load import load_topology
from edgesim.plan.build import build_plan
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.state import LabState


def _unix_service(lab: str):
    """The default plan's first edge and its service listening on a unix socket (the XDP agent)."""
    plan = build_plan(load_topology(DEFAULT_TOPOLOGY).model_copy(update={"name": lab}))
    edge = plan.nodes_with_role("edge")[0]
    service = next(s for s in edge.services if s.listens and s.listens[0].startswith("unix:"))
    return edge, service


def _report(state: LabState, key: str, gave_up: bool) -> None:
    # What the supervisor writes (supervisor._report): pid, restarts, gave_up, held per service.
    state.dir.mkdir(parents=True, exist_ok=True)
    state.services_file.write_text(json.dumps({key: {"pid": None, "restarts": 5, "gave_up": gave_up}}))


@pytest.mark.parametrize("gave_up", [True, False])
def test_a_service_that_keeps_dying_fails_at_once(tmp_path, monkeypatch, gave_up: bool) -> None:
    monkeypatch.setattr(paths, "STATE_ROOT", tmp_path)
    edge, service = _unix_service("ready")
    state = LabState("ready")
    _report(state, f"{edge.name}/{service.name}", gave_up)
    timeout = 2.0 if not gave_up else 30.0
    started = time.monotonic()
    with pytest.raises(EdgesimError) as raised:
        readiness.wait_listening(NetnsBackend(), edge, service, state, timeout)
    took = time.monotonic() - started
    if gave_up:
        assert "kept dying" in str(raised.value) and took < 5.0, (took, str(raised.value))
    else:  # still being restarted: it may yet come up, so the deadline holds
        assert "did not start listening" in str(raised.value) and took >= timeout
