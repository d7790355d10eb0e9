"""The Vagrant docker-provider job, for real: a scratch copy boots, provisions, runs the lab, and is gone."""

from __future__ import annotations

import pytest

from edgesim.taskutil import console
from edgesim.vagrant import engine, job
from tests.conftest import require_root


@pytest.fixture(scope="module")
def tools() -> None:
    """Vagrant, Docker and debootstrap on the host (roles/vagrant installs what is missing)."""
    require_root()
    job.install_tools(console)


def test_vagrant_up_with_docker_runs_the_lab_and_the_smoke_e2e_and_leaves_nothing(
    tools: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # the job's progress, live: it takes minutes
        report = job.run(console)
        print(
            f"\nvagrant job seconds: {report.seconds}; image {report.image} {report.image_bytes / 1e6:.0f} MB"
        )
    # `vagrant validate` ran in the job, with the docker provider usable (the engine up).
    assert report.seconds["validate"] > 0
    assert report.smoke_summary.startswith("3 passed"), f"smoke e2e in the guest: {report.smoke_summary!r}"
    assert report.leftovers == []
    assert engine.leftovers() == [] and engine.engine_leftovers() == []
