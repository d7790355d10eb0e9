"""The Vagrant docker-provider job, for real: a scratch copy boots, provisions, runs the lab, and is gone."""

from __future__ import annotations

import pytest

from edgesim.taskutil import console
from edgesim.vagrant import engine, job
from edgesim.vagrant.steps import capture
from tests.conftest import require_root


@pytest.fixture(scope="module")
def tools() -> None:
    """Vagrant, Docker and debootstrap on the host (roles/vagrant installs what is missing)."""
    require_root()
    job.install_tools(console)


def test_the_vagrantfile_validates(tools: None, tmp_path) -> None:
    tree = job.scratch_copy(tmp_path)
    result = capture(["vagrant", "validate"], env=job.vagrant_env(tree, "unused"), cwd=tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vagrant_up_with_docker_runs_the_lab_and_the_smoke_e2e_and_leaves_nothing(
    tools: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # the job's progress, live: it takes minutes
        report = job.run(console)
        print(
            f"\nvagrant job seconds: {report.seconds}; image {report.image} {report.image_bytes / 1e6:.0f} MB"
        )
    assert report.smoke_summary.startswith("3 passed"), f"smoke e2e in the guest: {report.smoke_summary!r}"
    assert report.leftovers == []
    assert engine.leftovers() == [] and engine.engine_leftovers() == []
