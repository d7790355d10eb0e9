"""The CI job: a scratch copy of the repo, `vagrant up --provider=docker`, smoke e2e, destroy, nothing left.

Steps, each timed: the tools (roles/vagrant), the engine, the guest image (cached by recipe digest), the copy,
`vagrant up` (the host role with ansible_local, then `bootstrap up`), the smoke tests inside the guest,
`vagrant destroy -f`, and a check that the engine holds no container, network or volume of the job.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from edgesim import hostsetup
from edgesim.errors import EdgesimError, Problem
from edgesim.vagrant import engine, image, scratch
from edgesim.vagrant.steps import run_logged

REPO = image.REPO
PLAYBOOK = REPO / "playbooks" / "vagrant.yml"
# Commands the job runs on the host, and the package of each (roles/vagrant installs them).
TOOLS = {
    "vagrant": "vagrant",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "rsync": "rsync",
}
# Not copied into the scratch tree: the host's venv and caches, git, and any Vagrant state of the user's.
COPY_IGNORE = (".venv", ".git", ".vagrant", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info")
LOG = engine.STATE / "job.log"
# The smoke e2e inside the guest: HTTP through the ECMP'd VIP from a client node, one flood whose drops XDP
# counts, one tenant request through GRE. The existing e2e tests, against the guest's own session lab.
TRAFFIC_SMOKE = "test_client2_reaches_the_vip or test_http_and_ftp_reach_acme_through_the_whole_path"
SMOKE = f"{TRAFFIC_SMOKE} or (test_attack_is_stopped_in_xdp_while_clients_are_served and udp-flood)"
GUEST_LAB = "pop"  # topology/default.yml's lab, which the `lab` provisioner brings up
# Seconds the guest's labs give their services to come up. The first `up` in a fresh guest, right after
# the venv's install, was seen to need more than the default 60 s on a loaded 2-core host (edge agents
# compiling BPF); on an idle CI machine it takes far less, so this only costs time when something hangs.
GUEST_READY_TIMEOUT_S = "180"


@dataclass
class Report:
    """What the job did: seconds per step, the image, what was left behind."""

    seconds: dict[str, float] = field(default_factory=dict)
    image: str = ""
    image_bytes: int = 0
    image_built: bool = False
    smoke_summary: str = ""
    leftovers: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, console: Console, name: str) -> Iterator[None]:
        """Time one step and announce it."""
        console.rule(f"[bold]vagrant job: {name}")
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started
            console.print(f"[dim]{name}: {self.seconds[name]:.0f} s[/]")


def missing_tools() -> list[str]:
    """The host commands the job needs and lacks, with their packages."""
    return [f"{tool} ({package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]


def install_tools(console: Console) -> None:
    """Install Vagrant, the Docker engine and debootstrap with roles/vagrant, when any is missing."""
    todo = missing_tools()
    if not todo:
        console.print("vagrant, docker and debootstrap are installed")
        return
    console.print(f"missing: {', '.join(todo)}; applying roles/vagrant")
    hostsetup.run_playbook(console, PLAYBOOK)
    still = missing_tools()
    if still:
        raise EdgesimError(Problem(str(PLAYBOOK), f"still missing after the playbook: {', '.join(still)}"))


def scratch_copy(dest: Path, source: Path = REPO) -> Path:
    """Copy the working tree (without venv, git and caches) to dest/edgesim; return the copy."""
    target = dest / "edgesim"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return target


def vagrant_env(tree: Path, tag: str) -> dict[str, str]:
    """Vagrant's environment: the engine, the image, and all of Vagrant's own state inside the scratch dir."""
    return {
        **engine.env(),
        "EDGESIM_VAGRANT_IMAGE": tag,
        "VAGRANT_HOME": str(tree.parent / "vagrant.d"),
        "VAGRANT_DEFAULT_PROVIDER": "docker",
        "VAGRANT_CHECKPOINT_DISABLE": "1",  # it would call home for version news
        "VAGRANT_NO_COLOR": "1",
        "EDGESIM_READY_TIMEOUT_S": GUEST_READY_TIMEOUT_S,  # the Vagrantfile hands it to the guest
        "EDGESIM_VAGRANT_JOB": "1",  # the Vagrantfile labels the container as the job's
    }


def run(console: Console, keep: bool = False) -> Report:
    """Run the whole job; raise EdgesimError with the failing step, after cleaning up, if any step fails."""
    report = Report()
    with report.step(console, "tools"):
        install_tools(console)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    started_engine = False
    with scratch.scratch_dir("vagrant", engine.STATE, console, keep) as scratch_root:
        tree = scratch_root / "edgesim"
        try:
            with report.step(console, "engine"):
                started_engine = engine.start()
                console.print(
                    f"engine at {engine.DOCKER_HOST} ({'started' if started_engine else 'already running'})"
                )
                for name in engine.remove_job_containers():
                    console.print(f"removed container {name}, left by a job that did not finish")
            with report.step(console, "image"):
                report.image, build_seconds = image.ensure(console, image.recipe(), LOG)
                report.image_built = build_seconds > 0
                report.image_bytes = engine.image_size(report.image)
                for tag in engine.remove_other_images(image.IMAGE, keep=report.image):
                    console.print(f"removed the image of an older recipe, {tag}")
            with report.step(console, "copy"):
                scratch_copy(scratch_root)
                console.print(f"working tree copied to {tree}")
            env = vagrant_env(tree, report.image)
            with destroyed_after(console, report, tree, env, LOG, keep):
                _up_and_smoke(console, report, tree, env)
            if not keep:
                report.leftovers = engine.leftovers()
        finally:
            if not keep and started_engine:
                engine.stop()
                report.leftovers += engine.engine_leftovers()
    return report


@contextmanager
def destroyed_after(
    console: Console, report: Report, tree: Path, env: dict[str, str], log: Path, keep: bool
) -> Iterator[None]:
    """The block, then `vagrant destroy -f` in the tree (timed as the step "destroy"), failed or not."""
    try:
        yield
    finally:
        if not keep:
            with report.step(console, "destroy"):
                run_logged(console, "vagrant destroy", ["vagrant", "destroy", "-f"], log, cwd=tree, env=env)


def _up_and_smoke(console: Console, report: Report, tree: Path, env: dict[str, str]) -> None:
    def vagrant(what: str, *args: str) -> str:
        return run_logged(console, what, ["vagrant", *args], LOG, cwd=tree, env=env)

    with report.step(console, "validate"):
        vagrant("vagrant validate", "validate")
    with report.step(console, "up"):
        vagrant("vagrant up", "up", "--provider=docker", "--provision-with", "host,lab")
    with report.step(console, "status"):
        vagrant("lab status in the guest", "ssh", "-c", f"sudo /edgesim/bootstrap status --lab {GUEST_LAB}")
        vagrant("bootstrap down in the guest", "ssh", "-c", f"sudo /edgesim/bootstrap down --lab {GUEST_LAB}")
    with report.step(console, "smoke"):
        output = vagrant(
            "smoke e2e in the guest",
            "ssh",
            "-c",
            f"sudo CI=true EDGESIM_READY_TIMEOUT_S={GUEST_READY_TIMEOUT_S} /edgesim/bootstrap test"
            f" --suite e2e --skip-setup -k '{SMOKE}'",
        )
        report.smoke_summary = _pytest_summary(output)


def _pytest_summary(output: str) -> str:
    lines = [line.strip("= ") for line in output.splitlines() if " passed" in line or " failed" in line]
    return lines[-1] if lines else ""
