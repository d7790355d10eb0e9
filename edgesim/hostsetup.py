"""Host prerequisites: probe what is missing, install it with the Ansible host role, prove bcc works."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import deque
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError
from rich.console import Console

from edgesim.bpf import loader
from edgesim.errors import EdgesimError, Problem

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "host.yml"
# The last setup run's full Ansible output; the console only shows task names and, on failure, the tail.
LOG_FILE = Path("/var/log/edgesim-setup.log")
# bcc's bindings come from the distribution package, which installs them for this interpreter only.
SYSTEM_PYTHON = "/usr/bin/python3"
# Commands edgesim runs, and the package providing each (the host role installs them all).
TOOLS = {
    "nft": "nftables",
    "tcpdump": "tcpdump",
    "iperf3": "iperf3",
    "ethtool": "ethtool",
    "trafgen": "netsniff-ng",
    "tshark": "tshark",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "bird": "bird2",
    "prometheus": "prometheus",
    "dot": "graphviz",
}
# Root's tools live in sbin, which a user's PATH (or sudo's secure_path on some systems) may lack.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# "TASK [role : name] ****" -> name; the role part is a path here since the playbook names the role by path.
_TASK_LINE = re.compile(r"^TASK \[(?:[^\]]* : )?(?P<name>.*)\] \*+$")
# "changed: [localhost] ..." and friends: a task's outcome, one line per host or loop item.
_RESULT_LINE = re.compile(r"^(?P<status>ok|changed|skipping|fatal|failed):")
# When a task has several results (loops), the one to show: the most noteworthy.
_STATUS_RANK = {"skipping": 0, "ok": 1, "changed": 2, "failed": 3, "fatal": 3}
_STATUS_STYLE = {"skipping": "dim", "ok": "green", "changed": "yellow", "failed": "red", "fatal": "red"}
_LOG_TAIL_LINES = 25


def _kernel_dir() -> Path:
    """Where bcc looks for the running kernel's headers."""
    return Path("/lib/modules", os.uname().release)


def _headers_present() -> bool:
    """Whether bcc finds kernel headers: in build itself, or (Debian's split layout) in source."""
    kdir = _kernel_dir()
    return (kdir / "build").is_dir() and any(
        (kdir / sub / "include" / "linux").is_dir() for sub in ("build", "source")
    )


# Python bindings that only the distribution packages ship (they wrap its C libraries): module → package.
SYSTEM_MODULES = {"bcc": "python3-bpfcc", "nftables": "python3-nftables"}


def _venv_link(module: str) -> Path | None:
    """Where a system module's link goes in the venv, or None outside a venv (system python has it)."""
    if sys.prefix == sys.base_prefix:
        return None
    return Path(sysconfig.get_paths()["purelib"]) / module


def _module_problems() -> list[str]:
    """Why importing a distribution-only module fails in this interpreter, for each that does."""
    importlib.invalidate_caches()  # setup may have just created the links
    problems = []
    for module, package in SYSTEM_MODULES.items():
        try:
            importlib.import_module(module)  # importing loads the C library, which is the real test
        except Exception as exc:  # a missing library raises OSError, a missing module ImportError
            problems.append(f"the {module} Python module cannot be imported by {sys.executable}: {exc}")
            link = _venv_link(module)
            if link is not None and not link.exists():
                problems.append(f"the system's {module} ({package}) is not linked into the venv at {link}")
    return problems


def missing() -> list[str]:
    """What this host lacks to run edgesim, one human-readable line each; empty when ready."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (edgesim creates network namespaces and installs packages)")
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    problems.extend(
        f"command {tool} not found (package {package})"
        for tool, package in TOOLS.items()
        if shutil.which(tool, path=search_path) is None
    )
    if not _headers_present():
        problems.append(f"kernel headers for bcc not found at {_kernel_dir() / 'build'}")
    problems.extend(_module_problems())
    return problems


def _system_module_dir(module: str) -> Path:
    """The directory of a distribution-only package, as the system python finds it."""
    # find_spec locates the package without importing it (importing would load its C library for nothing).
    probe = (
        f"import importlib.util as u; s = u.find_spec({module!r}); "
        "print(s.submodule_search_locations[0] if s else '')"
    )
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EdgesimError(Problem(SYSTEM_PYTHON, f"cannot ask it where {module} is: {exc}")) from exc
    location = result.stdout.strip()
    if not location:
        package = SYSTEM_MODULES[module]
        raise EdgesimError(
            Problem(SYSTEM_PYTHON, f"has no {module} module", f"install {package} (the host role does)")
        )
    return Path(location).resolve()


def link_system_module(module: str) -> Path | None:
    """Make a distribution-only module importable from the running venv with one symlink; return the link."""
    link = _venv_link(module)
    if link is None:
        return None
    target = _system_module_dir(module)
    # One link instead of a .pth for all of dist-packages: the venv keeps its own versions of everything else.
    if link.is_symlink() and link.resolve() == target:
        return link
    if link.exists() and not link.is_symlink():
        raise EdgesimError(
            Problem(
                str(link),
                f"is a real package, not the system's {module}",
                f"remove it; setup links {target} there",
            )
        )
    # Replace atomically so a concurrent import never sees a missing or half-made link.
    staging = link.with_name(f".{module}-{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target, target_is_directory=True)
    staging.replace(link)
    importlib.invalidate_caches()
    return link


def link_bcc() -> Path | None:
    """Make the system's bcc importable from the running venv; return the link."""
    return link_system_module("bcc")


def _playbook_command(playbook: Path) -> list[str]:
    """ansible-playbook from the same venv as this interpreter, applying a playbook to this machine."""
    # Not resolved: sys.executable is the venv's own link, and its directory holds the venv's scripts.
    ansible = Path(sys.executable).parent / "ansible-playbook"
    if not ansible.exists():
        raise EdgesimError(Problem(str(ansible), "not found", "install edgesim with pip into this venv"))
    return [str(ansible), "-c", "local", "-i", "localhost,", str(playbook)]


def _show_task(console: Console, name: str | None, status: str | None) -> None:
    """Print one finished task with its outcome."""
    if name is not None:
        shown = status or "ok"
        console.print(f"  [{_STATUS_STYLE.get(shown, 'green')}]{shown:>8}[/] {name}", highlight=False)


def _log_file(playbook: Path) -> Path:
    """Where a playbook's last full output goes: LOG_FILE for the host role, a file of its own otherwise."""
    return LOG_FILE if playbook == PLAYBOOK else LOG_FILE.with_name(f"edgesim-{playbook.stem}.log")


def run_playbook(console: Console, playbook: Path = PLAYBOOK) -> None:
    """Run a playbook on this machine, showing task names as they run and keeping the full output in a log."""
    command = _playbook_command(playbook)
    log_file = _log_file(playbook)
    # No colour codes in the log, and unbuffered output so task names appear as the tasks start.
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
    task: str | None = None
    status: str | None = None
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with (
            log_file.open("w") as log,
            console.status("Preparing the host with Ansible") as spinner,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env
            ) as proc,
        ):
            log.write(f"$ {' '.join(command)}\n")
            assert proc.stdout is not None  # for the type checker: stdout=PIPE
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip("\n")
                tail.append(line)
                if started := _TASK_LINE.match(line):
                    _show_task(console, task, status)
                    task, status = started["name"], None
                    spinner.update(f"Preparing the host with Ansible: {task}")
                elif (result := _RESULT_LINE.match(line)) and task is not None:
                    new = result["status"]
                    if status is None or _STATUS_RANK[new] > _STATUS_RANK[status]:
                        status = new
            _show_task(console, task, status)
            returncode = proc.wait()
    except OSError as exc:
        raise EdgesimError(Problem("setup", f"cannot run {command[0]}: {exc}")) from exc
    if returncode != 0:
        console.print(f"[red]ansible-playbook failed; the last lines of {log_file}:[/]")
        for line in tail:
            console.print(f"  {line}", highlight=False, markup=False)
        raise EdgesimError(
            Problem(str(playbook), f"the playbook failed (exit status {returncode})", f"full log: {log_file}")
        )


def run_setup(console: Console, force: bool = False) -> None:
    """Install what the host lacks (packages, kernel headers, bcc in the venv) and prove bcc works."""
    todo = missing()
    if not todo and not force:
        console.print("[green]Host prerequisites are all present.[/]")
        return
    if os.geteuid() != 0:
        raise EdgesimError(Problem("setup", "installing host prerequisites needs root", "run it with sudo"))
    for line in todo:
        console.print(f"  [yellow]missing:[/] {line}", highlight=False)
    run_playbook(console)
    for module in SYSTEM_MODULES:
        link = link_system_module(module)
        if link is not None:
            console.print(f"  {module} linked into the venv: {link} -> {link.resolve()}", highlight=False)
    # No spinner here: the loader captures stdout while bcc compiles, and would capture the spinner too.
    console.print("  proving bcc: compiling and attaching an XDP program in a scratch namespace")
    mode = prove_bcc()
    console.print(f"  bcc works: an XDP program compiled and attached to a veth in {mode} mode")
    left = missing()
    if left:
        raise EdgesimError([Problem("setup", f"still missing after setup: {line}") for line in left])
    console.print("[green]Host prerequisites are ready.[/]")


def prove_bcc() -> str:
    """Compile and attach a pass-through XDP program in a scratch namespace; return the mode that worked."""
    # A compile with bcc now, whatever the BPF cache holds: this proves the compiler, not the cache.
    source = loader.BPF_DIR / "xdp_pass.c"
    program = loader.compile_text(source, loader.translation_unit(source), [f"-I{loader.BPF_DIR}"])
    namespace = f"esprobe{os.getpid()}"
    try:
        fd = loader.load_xdp(program, "xdp_pass")
        netns.create(namespace)
        # The veth pair is created from inside the namespace, so nothing ever appears in the root one.
        with IPRoute(netns=namespace, flags=0) as ipr:
            ipr.link("add", ifname="esprobe0", kind="veth", peer="esprobe1")
            for ifname in ("esprobe0", "esprobe1"):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
        # A pass program needs nothing on the peer; XDP_TX/REDIRECT programs would (see DESIGN.md).
        mode = loader.attach_xdp(namespace, "esprobe0", fd)
        info = loader.xdp_info(namespace, "esprobe0")
        if info is None or info["mode"] != mode:
            raise EdgesimError(
                Problem(namespace, f"XDP attach in {mode} mode reported success, but query says {info}")
            )
        loader.detach_xdp(namespace, "esprobe0")
        if loader.xdp_info(namespace, "esprobe0") is not None:
            raise EdgesimError(Problem(namespace, "the XDP program is still attached after detaching it"))
        return mode
    except (NetlinkError, OSError) as exc:
        raise EdgesimError(
            Problem(
                namespace, f"cannot set up the XDP probe: {exc}", "edgesim needs root and network namespaces"
            )
        ) from exc
    finally:
        # Deleting the namespace deletes the veth pair with it, and with them the program's last user.
        if namespace in netns.listnetns():
            netns.remove(namespace)
        program.cleanup()
