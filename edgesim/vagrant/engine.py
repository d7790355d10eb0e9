"""A private Docker engine for the Vagrant job: its own socket, data, bridge in 198.19.0.0/16, no NAT.

It never touches a user's own daemon or /etc/docker/daemon.json, and it works whether or not another
daemon runs: everything it makes is under its own paths, and its bridge has a name of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
from ipaddress import IPv4Interface
from pathlib import Path

from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.errors import EdgesimError, Problem
from edgesim.files import atomic_write_json
from edgesim.vagrant.steps import capture
from edgesim.waiting import wait_until

# Kept between runs: the image cache lives in DATA_ROOT, so a second run skips the build.
STATE = Path(os.environ.get("EDGESIM_VAGRANT_STATE", "/var/lib/edgesim/vagrant"))
RUN = Path("/run/edgesim-vagrant")
SOCKET = RUN / "docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"
PIDFILE = RUN / "dockerd.pid"
LOG = STATE / "dockerd.log"
CONFIG = STATE / "daemon.json"
# The default bridge: DESIGN.md's management range, never RFC 1918 (Docker's own default).
BRIDGE = "esvagrant0"
BRIDGE_ADDRESS = IPv4Interface("198.19.240.1/24")
ADDRESS_POOL = "198.19.240.0/20"
# The networks every engine has and nobody made; anything else left after the job is a leak.
BUILTIN_NETWORKS = frozenset({"bridge", "host", "none"})
START_TIMEOUT = 60.0
# The label the Vagrantfile gives the CI job's containers (EDGESIM_VAGRANT_JOB set).
JOB_LABEL = "edgesim.vagrant.job"


def daemon_config() -> dict[str, object]:
    """The engine's daemon.json: our bridge, pools in 198.19/16, no iptables, forwarding or masquerade."""
    return {
        "bridge": BRIDGE,
        "default-address-pools": [{"base": ADDRESS_POOL, "size": 24}],
        "iptables": False,
        "ip-forward": False,
        "ip-masq": False,
        "userland-proxy": False,
        "containerd-namespace": "edgesim-vagrant",
        "containerd-plugins-namespace": "edgesim-vagrant-plugins",
        "data-root": str(STATE / "docker"),
        "exec-root": str(RUN / "exec"),
        "pidfile": str(PIDFILE),
        "hosts": [DOCKER_HOST],
    }


def env() -> dict[str, str]:
    """Environment for the docker CLI (and Vagrant's docker provider, which runs it) to reach the engine."""
    return {"DOCKER_HOST": DOCKER_HOST}


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a docker CLI command against the engine."""
    return capture(["docker", *args], env=env())


def running() -> bool:
    """Whether the engine answers on its socket."""
    return SOCKET.exists() and docker("version", "--format", "{{.Server.Version}}").returncode == 0


def _pid() -> int | None:
    try:
        return int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _ensure_bridge() -> None:
    """Create the engine's bridge with its gateway address (dockerd wants a bridge of another name made)."""
    with IPRoute() as ipr:
        if not ipr.link_lookup(ifname=BRIDGE):
            ipr.link("add", ifname=BRIDGE, kind="bridge")
        index = ipr.link_lookup(ifname=BRIDGE)[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
        if str(BRIDGE_ADDRESS.ip) not in have:
            ipr.addr(
                "add", index=index, address=str(BRIDGE_ADDRESS.ip), prefixlen=BRIDGE_ADDRESS.network.prefixlen
            )
        ipr.link("set", index=index, state="up")


def _remove_bridge() -> None:
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=BRIDGE):
            ipr.link("del", index=index)


def start() -> bool:
    """Start the engine unless it runs; return whether this call started it (and so must stop it)."""
    if running():
        return False
    STATE.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    atomic_write_json(CONFIG, daemon_config())
    _ensure_bridge()
    with LOG.open("a") as log:
        try:
            proc = subprocess.Popen(
                ["dockerd", "--config-file", str(CONFIG)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed with the terminal's process group; stop() ends it
            )
        except OSError as exc:
            raise EdgesimError(Problem("dockerd", f"cannot start it: {exc}", "install docker.io")) from exc

    def up() -> bool:
        if proc.poll() is not None:
            raise EdgesimError(Problem("dockerd", f"exited with status {proc.returncode}", f"see {LOG}"))
        return running()

    wait_until(
        up,
        timeout=START_TIMEOUT,
        interval=0.5,
        failure=lambda _: Problem(
            "dockerd", f"not answering on {SOCKET} after {START_TIMEOUT:.0f} s", f"see {LOG}"
        ),
    )
    return True


def stop() -> None:
    """Stop the engine and remove its bridge; its data (the image cache) stays."""
    try:
        pid = _pid()
        if pid is not None and namespaces.process_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_until(
                lambda: not namespaces.process_alive(pid),
                timeout=60,
                interval=0.3,
                failure=lambda _: Problem("dockerd", f"pid {pid} did not exit within 60 s of SIGTERM"),
            )
    finally:
        _remove_bridge()


def leftovers(job_only: bool = False) -> list[str]:
    """Containers (job_only: the CI job's), non-builtin networks and volumes in the engine; [] if clean."""
    found: list[str] = []
    if running():
        ps = ["ps", "-a", "--format", "{{.Names}} ({{.Status}})"]
        if job_only:
            ps += ["--filter", f"label={JOB_LABEL}"]
        found += [f"container {c}" for c in _lines(docker(*ps))]
        nets = _lines(docker("network", "ls", "--format", "{{.Name}}"))
        found += [f"docker network {n}" for n in nets if n not in BUILTIN_NETWORKS]
        found += [f"docker volume {v}" for v in _lines(docker("volume", "ls", "-q"))]
    return found


def remove_job_containers() -> list[str]:
    """Remove the containers a crashed CI job left (by the job's label only); return their names."""
    names = _lines(docker("ps", "-a", "--filter", f"label={JOB_LABEL}", "--format", "{{.Names}}"))
    for name in names:
        _lines(docker("rm", "-f", "-v", name))
    return names


def engine_leftovers() -> list[str]:
    """The engine itself when it should be gone: its process or its bridge."""
    found = []
    pid = _pid()
    if pid is not None and namespaces.process_alive(pid):
        found.append(f"dockerd process {pid} ({SOCKET})")
    with IPRoute() as ipr:
        if ipr.link_lookup(ifname=BRIDGE):
            found.append(f"bridge {BRIDGE}")
    return found


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    if result.returncode != 0:
        raise EdgesimError(Problem(f"docker {' '.join(result.args[1:3])}", result.stderr.strip()))
    return [line for line in result.stdout.splitlines() if line.strip()]


def image_exists(tag: str) -> bool:
    """Whether the engine holds an image with this tag."""
    return docker("image", "inspect", "--format", "{{.Id}}", tag).returncode == 0


def image_size(tag: str) -> int:
    """The image's size in bytes."""
    result = docker("image", "inspect", "--format", "{{.Size}}", tag)
    return int(result.stdout.strip()) if result.returncode == 0 else 0


def remove_other_images(repository: str, keep: str) -> list[str]:
    """Remove the repository's images other than `keep` (older recipes); return the tags removed."""
    tags = _lines(docker("image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}"))
    old = [tag for tag in tags if tag != keep]
    if old:
        docker("image", "rm", *old)
    return old
