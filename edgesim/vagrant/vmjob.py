"""The VM job: the local box under libvirt with QEMU's software emulation (TCG), the lab and its tests inside.

Steps, each timed: the tools (playbooks/vm.yml), libvirt's daemons, the box (cached by recipe digest), a
scratch copy of the repo (its default topology with the guest's longer BGP timers), `vagrant up
--no-provision` (the box's volume, the domain, the boot, rsync), the host role (ansible_local; the kernel
headers by the exact-package path), `bootstrap up`, the smoke e2e of the docker job with its flood at
the guest's scale, the site router in `gre: kernel` against the edges' eBPF GRE (tests/vm/guest_kernel_gre.py
in the guest), `vagrant destroy -f`, and a check that libvirt holds nothing of the job: no domain, volume,
pool, network, QEMU or dnsmasq, and that no network outside 198.19.0.0/16 was started.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from edgesim import hostsetup
from edgesim.errors import EdgesimError, Problem
from edgesim.vagrant import box, engine, libvirtd, scratch
from edgesim.vagrant.job import GUEST_LAB, TRAFFIC_SMOKE, Report, destroyed_after, scratch_copy
from edgesim.vagrant.steps import capture, run_logged

REPO = box.image.REPO
PLAYBOOK = REPO / "playbooks" / "vm.yml"
LOG = engine.STATE / "vm.log"
# The guest's serial console: boot messages with the kernel's timestamps, where a boot that hangs shows why.
CONSOLE_LOG = engine.STATE / "vm-console.log"
# Vagrant's boxes for the job, kept between runs (the box add is then skipped too).
VAGRANT_HOME = engine.STATE / "vm-vagrant.d"
# vagrant-libvirt names the domain after the Vagrantfile's directory (the scratch copy's "edgesim").
DOMAIN_PREFIX = "edgesim_"
# Commands the job runs on the host (beyond the box build's), and their packages.
TOOLS = {
    "virsh": "libvirt-clients",
    "libvirtd": "libvirt-daemon-system",
    "virtlogd": "libvirt-daemon-system",
    "qemu-system-x86_64": "qemu-system-x86",
    "dnsmasq": "dnsmasq-base",
    "iptables": "iptables",
    "rsync": "rsync",
}
# Under TCG everything in the guest is ~10x slower (a bcc compile takes minutes): twenty minutes a service.
GUEST_READY_TIMEOUT_S = "1200"
GUEST_GRE_TEST = "tests/vm/guest_kernel_gre.py"
# The docker job's smoke, but its flood at the guest's scale (tests/e2e/guest_flood.py says why): by path,
# in the e2e directory, so that the suite's session lab and fixtures serve it.
GUEST_SMOKE_FILES = ["tests/e2e/test_lab_traffic.py", "tests/e2e/test_tenants.py", "tests/e2e/guest_flood.py"]
GUEST_SMOKE = f"{TRAFFIC_SMOKE} or test_a_udp_flood_is_rate_limited_in_xdp_while_client1_is_served"
# The guest's BIRD is as slow as the rest: under the lab's load it missed BFD's default 300 ms and every
# session flapped about once a minute (routes withdrawn, connections refused). Its labs get 3 s of BFD.
GUEST_BGP_TIMERS = "bgp_timers: {bfd_interval_ms: 500, bfd_multiplier: 6, hold_s: 15, keepalive_s: 5}"
GUEST_TOPOLOGY = Path("topology") / "default.yml"  # the `lab` provisioner's, and the e2e suite's
# ansible's task line, then its result for the guest ("changed: [default]", "skipping: [default]").
_TASK = re.compile(r"TASK \[(?:[^\]]* : )?(?P<name>[^\]]*)\]")
_RESULT = re.compile(r"^\s*(?P<status>ok|changed|skipping|fatal|failed): \[")


@dataclass
class VmReport(Report):
    """The docker job's report, plus the box and what the guest showed."""

    box: str = ""
    box_bytes: int = 0
    box_built: bool = False
    guest_kernel: str = ""
    guest_boot: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    headers_build: str = ""
    gre_summary: str = ""


def missing_tools() -> list[str]:
    """The host commands the job needs and lacks, with their packages."""
    found = [
        f"{t} ({p})"
        for t, p in TOOLS.items()
        if shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin") is None
    ]
    found += box.missing_tools()
    if (
        shutil.which("vagrant") is not None
        and "vagrant-libvirt" not in capture(["vagrant", "plugin", "list"]).stdout
    ):
        found.append("the vagrant-libvirt plugin (vagrant-libvirt)")
    return found


def install_tools(console: Console) -> None:
    """Install Vagrant, vagrant-libvirt, libvirt, QEMU and the box's tools (playbooks/vm.yml) when missing."""
    todo = missing_tools()
    if not todo:
        console.print("vagrant, vagrant-libvirt, libvirt, QEMU and the box's tools are installed")
        return
    console.print(f"missing: {', '.join(todo)}; applying {PLAYBOOK.relative_to(REPO)}")
    hostsetup.run_playbook(console, PLAYBOOK)
    still = missing_tools()
    if still:
        raise EdgesimError(Problem(str(PLAYBOOK), f"still missing after the playbook: {', '.join(still)}"))


def vagrant_env(tree: Path, box_name: str) -> dict[str, str]:
    """Vagrant's environment: the local box under TCG, the job's pool, the boxes kept in VAGRANT_HOME."""
    return {
        "EDGESIM_VAGRANT_BOX": box_name,
        "EDGESIM_LIBVIRT_DRIVER": "qemu",
        "EDGESIM_LIBVIRT_POOL": libvirtd.POOL,
        "EDGESIM_LIBVIRT_CONSOLE_LOG": str(CONSOLE_LOG),
        "VAGRANT_HOME": str(VAGRANT_HOME),
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_NO_COLOR": "1",
        "EDGESIM_READY_TIMEOUT_S": GUEST_READY_TIMEOUT_S,
    }


def box_env() -> dict[str, str]:
    """The environment in which the box is added (the job's VAGRANT_HOME)."""
    return {"VAGRANT_HOME": str(VAGRANT_HOME), "VAGRANT_CHECKPOINT_DISABLE": "1"}


def run(console: Console, keep: bool = False) -> VmReport:
    """Run the whole job; raise EdgesimError with the failing step, after cleaning up, if any step fails."""
    report = VmReport()
    with report.step(console, "tools"):
        install_tools(console)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    started_daemons = False
    tables_before = libvirtd.nft_tables()
    with scratch.scratch_dir("vm", engine.STATE, console, keep) as scratch_root:
        tree = scratch_root / "edgesim"
        try:
            with report.step(console, "libvirtd"):
                started_daemons = libvirtd.start()
                console.print(
                    f"libvirtd at {libvirtd.URI} ({'started' if started_daemons else 'already running'})"
                )
                before = libvirtd.leftovers(DOMAIN_PREFIX)
                if before:
                    raise EdgesimError(
                        Problem(
                            "libvirt",
                            f"already holds {', '.join(before)}",
                            # A crashed job's scratch tree (its Vagrant state) is gone by now: virsh.
                            f"virsh -c {libvirtd.URI} destroy NAME; virsh -c {libvirtd.URI} undefine NAME"
                            " --remove-all-storage (or `vagrant destroy -f` where a kept job made it)",
                        )
                    )
            with report.step(console, "box"):
                built = box.ensure(console, box.recipe(), LOG, box_env())
                report.box, report.box_bytes = built.name, built.bytes
                report.box_built = built.build_seconds > 0
            with report.step(console, "copy"):
                slow_guest_timers(scratch_copy(scratch_root) / GUEST_TOPOLOGY)
                libvirtd.ensure_pool()
            env = vagrant_env(tree, report.box)
            with destroyed_after(console, report, tree, env, LOG, keep):
                _inside(console, report, tree, env)
        finally:
            if not keep:
                libvirtd.remove_pool()
                if libvirtd.running():
                    report.leftovers += libvirtd.leftovers(DOMAIN_PREFIX)
                if started_daemons:
                    libvirtd.stop()
                    report.leftovers += libvirtd.daemon_leftovers()
                    libvirtd.remove_firewall(tables_before)
                    report.leftovers += libvirtd.firewall_leftovers(tables_before)
                report.leftovers += libvirtd.process_leftovers(DOMAIN_PREFIX)
    return report


def slow_guest_timers(topology: Path) -> None:
    """Give the scratch copy's default topology the guest's longer BFD and BGP timers (GUEST_BGP_TIMERS)."""
    text = topology.read_text()
    if not re.search(r"^bgp_timers:", text, re.MULTILINE):
        note = "# Added by the VM job (edgesim/vagrant/vmjob.py): this guest runs under QEMU's emulation.\n"
        topology.write_text(f"{text.rstrip()}\n\n{note}{GUEST_BGP_TIMERS}\n")


def _inside(console: Console, report: VmReport, tree: Path, env: dict[str, str]) -> None:
    def vagrant(what: str, *args: str) -> str:
        return run_logged(console, what, ["vagrant", *args], LOG, cwd=tree, env=env)

    def guest(what: str, command: str) -> str:
        return vagrant(what, "ssh", "-c", command)

    with report.step(console, "boot"):
        vagrant("vagrant up", "up", "--provider=libvirt", "--no-provision")
    report.guest_kernel = guest("kernel in the guest", "uname -r").strip().splitlines()[-1]
    report.guest_boot = _last_line(
        guest("boot time in the guest", "systemd-analyze || true"), "Startup finished"
    )
    with report.step(console, "provision"):
        output = vagrant("host role in the guest", "provision", "--provision-with", "host")
    report.headers = headers_path(output)
    report.headers_build = guest(
        "kernel headers in the guest",
        "readlink -f /lib/modules/$(uname -r)/build; dpkg-query -W -f='${Package} ${Status}\\n' "
        "linux-headers-$(uname -r)",
    ).strip()
    with report.step(console, "bootstrap up"):
        vagrant("bootstrap up in the guest", "provision", "--provision-with", "lab")
    with report.step(console, "status"):
        guest("lab status in the guest", f"sudo /edgesim/bootstrap status --lab {GUEST_LAB}")
        guest("bootstrap down in the guest", f"sudo /edgesim/bootstrap down --lab {GUEST_LAB}")
    with report.step(console, "smoke"):
        output = guest(
            "smoke e2e in the guest",
            f"cd /edgesim && sudo CI=true EDGESIM_READY_TIMEOUT_S={GUEST_READY_TIMEOUT_S}"
            f" .venv/bin/python -m pytest {' '.join(GUEST_SMOKE_FILES)} -k '{GUEST_SMOKE}'"
            " -v -rA -p no:cacheprovider",
        )
        report.smoke_summary = _summary(output)
    with report.step(console, "kernel gre"):
        output = guest(
            "site router in gre: kernel mode in the guest",
            f"cd /edgesim && sudo CI=true EDGESIM_READY_TIMEOUT_S={GUEST_READY_TIMEOUT_S}"
            f" .venv/bin/python -m pytest {GUEST_GRE_TEST} -v -rA -p no:cacheprovider",
        )
        report.gre_summary = _summary(output)


def headers_path(output: str) -> dict[str, str]:
    """The host role's kernel-header tasks and their outcome, from ansible's output."""
    outcome: dict[str, str] = {}
    task = ""
    for line in output.splitlines():
        line = re.sub(r"^\s*\d+s ", "", line)
        if started := _TASK.search(line):
            task = started["name"]
        elif (result := _RESULT.match(line)) and "header" in task.lower():
            outcome[task] = result["status"]
    return outcome


def _last_line(output: str, marker: str) -> str:
    lines = [line.strip() for line in output.splitlines() if marker in line]
    return lines[-1] if lines else ""


def _summary(output: str) -> str:
    lines = [line.strip("= ") for line in output.splitlines() if " passed" in line or " failed" in line]
    return lines[-1] if lines else ""
