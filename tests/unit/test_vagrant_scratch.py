"""The jobs' scratch trees: a crashed job's tree is removed by the next job, nothing outside the prefix is."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgesim.errors import EdgesimError
from edgesim.vagrant import scratch


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private /var/tmp for the test."""
    monkeypatch.setattr(scratch, "SCRATCH_ROOT", tmp_path / "var-tmp")
    (tmp_path / "var-tmp").mkdir()
    return tmp_path / "var-tmp"


def test_a_crashed_jobs_tree_goes_and_only_its_own_kinds(root: Path, tmp_path: Path) -> None:
    stale = root / "edgesim-vagrant-abc123"
    (stale / "edgesim").mkdir(parents=True)
    other_kind = root / "edgesim-vm-abc123"
    other_kind.mkdir()
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "file").write_text("keep")
    (root / "edgesim-vagrant-link").symlink_to(outside)
    out = io.StringIO()
    with scratch.scratch_dir("vagrant", tmp_path / "locks", Console(file=out)) as fresh:
        assert fresh.parent == root and fresh.name.startswith("edgesim-vagrant-")
        assert not stale.exists()
    assert not fresh.exists()
    assert other_kind.exists()
    assert (outside / "file").read_text() == "keep"
    assert "left by a job that did not finish" in out.getvalue()


def test_keep_leaves_the_tree_for_inspection(root: Path, tmp_path: Path) -> None:
    with scratch.scratch_dir("vm", tmp_path / "locks", Console(file=io.StringIO()), keep=True) as fresh:
        pass
    assert fresh.is_dir()


def test_a_second_job_of_the_kind_is_refused_while_one_runs(root: Path, tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "vagrant-job.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl,sys; f=open({str(lock)!r},'w'); fcntl.flock(f, 2); print(1); "
            "sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "1"
        with pytest.raises(EdgesimError, match="another one runs"):
            with scratch.scratch_dir("vagrant", tmp_path / "locks", Console(file=io.StringIO())):
                pass
    finally:
        holder.communicate("")


def test_an_unknown_kind_never_reaches_the_glob(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        scratch.stale_trees("../etc")  # type: ignore[arg-type]
