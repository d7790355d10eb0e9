"""The docker provider's guest image: Debian with sshd, the vagrant user, and everything offline.

The engine runs without masquerading, so a guest has no way out. The image therefore carries what the
guest's provisioning installs, without installing it: a local apt repository with the host role's packages
(the role really installs them, from there) and a wheelhouse for the venv `bootstrap` makes (pip reads it
through /etc/pip.conf). It is built on the host: debootstrap a rootfs, download into it from a chroot
(which shares the host's network), `docker import`. Tagged with the digest of its recipe: a second run
with the same recipe skips the build.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from edgesim.errors import EdgesimError, Problem
from edgesim.vagrant import engine
from edgesim.vagrant.steps import run_logged

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
IMAGE = "edgesim-vagrant-guest"
# What Vagrant and its provisioners need before any role runs: sshd and sudo for `vagrant ssh`, rsync for the
# synced folder, ansible-core and python3-apt for ansible_local, venv and pip for bootstrap.
BASE_PACKAGES = (
    "openssh-server",
    "sudo",
    "rsync",
    "python3",
    "python3-apt",
    "python3-venv",
    "python3-pip",
    "ansible-core",
    "debconf-utils",
    "apt-utils",
    "ca-certificates",
    "iproute2",
    "procps",
)
# Packages the host role installs beyond its list: the generic kernel headers (a 6.x host kernel has none).
EXTRA_ROLE_PACKAGES = ("linux-headers-amd64",)
LOCAL_REPO = "/opt/edgesim/apt"
WHEELHOUSE = "/opt/edgesim/wheels"
INIT = "/usr/local/sbin/edgesim-guest-init"
# The container's command: bpffs for the lab's pins (a container has none), fresh host keys, sshd.
INIT_SCRIPT = """#!/bin/sh
set -e
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
"""
SSHD_CONFIG = "UseDNS no\nPasswordAuthentication no\n"
SUDOERS = "Defaults:vagrant !requiretty\nvagrant ALL=(ALL) NOPASSWD:ALL\n"
PIP_CONF = f"[global]\nno-index = true\nfind-links = {WHEELHOUSE}\n"
# The public half of Vagrant's well-known insecure key, as the Debian or HashiCorp package ships it.
INSECURE_KEY_GLOBS = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
    "/usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub",
    "/opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub",
)


@dataclass(frozen=True)
class Recipe:
    """Everything the image is made of; its digest names the image."""

    role_packages: tuple[str, ...]
    wheels: tuple[str, ...]
    insecure_key: str
    # This module's source: the recipe's procedure (read once, so one run's tag never changes midway).
    procedure: str = ""

    def digest(self) -> str:
        """A short hash of the recipe, procedure included."""
        text = json.dumps(
            {
                "suite": SUITE,
                "base": BASE_PACKAGES,
                "role": self.role_packages,
                "wheels": self.wheels,
                "key": self.insecure_key,
                "procedure": self.procedure,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        """The image's name and tag."""
        return f"{IMAGE}:{self.digest()}"


def role_packages(repo: Path = REPO) -> tuple[str, ...]:
    """The host role's package list, as its defaults name it, plus what it installs besides."""
    defaults = yaml.safe_load((repo / "roles" / "host" / "defaults" / "main.yml").read_text())
    return (*defaults["host_packages"], *EXTRA_ROLE_PACKAGES)


def wheel_requirements(repo: Path = REPO) -> tuple[str, ...]:
    """What `pip install -e .[test]` needs offline: the build backend, pip itself, every dependency."""
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    project = pyproject["project"]
    return (
        "pip",
        "wheel",
        *pyproject["build-system"]["requires"],
        *project["dependencies"],
        *project["optional-dependencies"]["test"],
    )


def insecure_key() -> str:
    """Vagrant's insecure public key from the installed Vagrant (never downloaded)."""
    for pattern in INSECURE_KEY_GLOBS:
        for path in sorted(glob.glob(pattern)):
            return Path(path).read_text().strip() + "\n"
    raise EdgesimError(
        Problem("vagrant", "its insecure public key (keys/vagrant.pub) is not installed", "install vagrant")
    )


def recipe(repo: Path = REPO) -> Recipe:
    """The recipe for this checkout."""
    return Recipe(role_packages(repo), wheel_requirements(repo), insecure_key(), Path(__file__).read_text())


def ensure(console: Console, rec: Recipe, log: Path) -> tuple[str, float]:
    """Build the image unless the engine has it; return its tag and the build's seconds (0 when cached)."""
    if engine.image_exists(rec.tag):
        console.print(f"guest image {rec.tag} is cached ({engine.image_size(rec.tag) / 1e6:.0f} MB)")
        return rec.tag, 0.0
    started = time.monotonic()
    work = engine.STATE / f"build-{rec.digest()}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "rootfs"
    try:
        base_rootfs(console, root, log)
        with chroot_mounts(root):
            offline_repository(console, root, rec, log)
        wheelhouse(console, root, rec, log)
        _vagrant_user(root, rec)
        _import(console, root, rec.tag, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    console.print(
        f"guest image {rec.tag} built in {seconds:.0f} s ({engine.image_size(rec.tag) / 1e6:.0f} MB)"
    )
    return rec.tag, seconds


def base_rootfs(console: Console, root: Path, log: Path) -> None:
    """Debian with the base packages, from a tarball kept by the last build with the same base."""
    key = hashlib.sha256(json.dumps([SUITE, MIRROR, BASE_PACKAGES]).encode()).hexdigest()[:16]
    cached = engine.STATE / f"base-{key}.tar"
    if cached.exists():
        console.print(f"image: base rootfs from {cached}")
        root.mkdir(parents=True)
        subprocess.run(["tar", "--numeric-owner", "-xpf", str(cached), "-C", str(root)], check=True)
        return
    _debootstrap(console, root, log)
    with chroot_mounts(root):
        _base_packages(console, root, log)
    for old in engine.STATE.glob("base-*.tar"):
        old.unlink()  # one base at a time: an older one would never be used again
    staging = cached.with_suffix(".tmp")
    subprocess.run(["tar", "--numeric-owner", "-cf", str(staging), "-C", str(root), "."], check=True)
    staging.replace(cached)


def _debootstrap(console: Console, root: Path, log: Path) -> None:
    console.print(f"image: debootstrap {SUITE} (minbase)")
    root.mkdir(parents=True)
    argv = ["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR]
    try:
        run_logged(console, "debootstrap", argv, log, echo=False)
    finally:
        # debootstrap's own log says which package failed; the build directory is removed afterwards.
        own = root / "debootstrap" / "debootstrap.log"
        if own.exists():
            with log.open("a") as out:
                out.write(own.read_text())
    # Nothing may start services while packages install inside the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def _base_packages(console: Console, root: Path, log: Path) -> None:
    """Vagrant's and the provisioners' needs, installed with apt (which orders their configuration)."""
    console.print(f"image: {len(BASE_PACKAGES)} base packages (sshd, sudo, rsync, python3, ansible-core)")
    in_root(
        console,
        "image: base packages",
        root,
        f"apt-get install -y -qq --no-install-recommends {' '.join(BASE_PACKAGES)} && apt-get clean",
        log,
    )


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
    """/proc and /dev inside the rootfs while apt and pip run in it, and the host's resolver."""
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    mounted: list[Path] = []
    try:
        for source, target, extra in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"])):
            subprocess.run(["mount", *extra, source, str(root / target)], check=True)
            mounted.append(root / target)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(path)], check=False)


def in_root(console: Console, what: str, root: Path, script: str, log: Path) -> None:
    """Run a shell script inside the rootfs, noninteractively, its output in the log."""
    run_logged(
        console,
        what,
        ["chroot", str(root), "/bin/sh", "-euc", script],
        log,
        echo=False,
        env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"},
    )


def offline_repository(console: Console, root: Path, rec: Recipe, log: Path) -> None:
    """Download the role's packages with their dependencies into a local apt repository, its only source."""
    console.print(f"image: the host role's {len(rec.role_packages)} packages into a local apt repository")
    packages = " ".join(rec.role_packages)
    in_root(
        console,
        "image: apt download",
        root,
        f"""
        apt-get update -qq
        apt-get install -y -qq --download-only --no-install-recommends {packages}
        mkdir -p {LOCAL_REPO}
        mv /var/cache/apt/archives/*.deb {LOCAL_REPO}/
        cd {LOCAL_REPO} && apt-ftparchive packages . > Packages
        rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
        echo 'deb [trusted=yes] file:{LOCAL_REPO} ./' > /etc/apt/sources.list
        rm -rf /var/lib/apt/lists/*
        apt-get update -qq
        apt-get clean
        """,
        log,
    )


def wheelhouse(console: Console, root: Path, rec: Recipe, log: Path) -> None:
    """Wheels of pip, the build backend and every Python dependency (sdists are built into wheels here).

    pip runs on the host, from edgesim's own venv: it has the host's index and certificate settings, and the
    host is the same Debian release as the guest (same Python minor version and glibc, so the same wheels).
    """
    console.print(f"image: wheelhouse for {len(rec.wheels)} Python requirements")
    wheels = root / WHEELHOUSE.lstrip("/")
    wheels.mkdir(parents=True)
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), *rec.wheels]
    run_logged(console, "image: pip wheel", argv, log, echo=False)
    (root / "etc/pip.conf").write_text(PIP_CONF)


def vagrant_user(root: Path, key: str) -> None:
    """The vagrant user with the insecure key, password-less sudo and sshd's settings, without host keys."""
    # Password "*": no password login, but not a locked account ("!"), which sshd may refuse outright.
    useradd = ["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", "vagrant"]
    subprocess.run(["chroot", str(root), *useradd], check=True)
    ssh_dir = root / "home/vagrant/.ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(key)
    (ssh_dir / "authorized_keys").chmod(0o600)
    subprocess.run(["chroot", str(root), "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"], check=True)
    sudoers = root / "etc/sudoers.d/vagrant"
    sudoers.write_text(SUDOERS)
    sudoers.chmod(0o440)
    (root / "etc/ssh/sshd_config.d/edgesim.conf").write_text(SSHD_CONFIG)
    for host_key in (root / "etc/ssh").glob("ssh_host_*"):
        host_key.unlink()  # every guest makes its own when it starts


def _vagrant_user(root: Path, rec: Recipe) -> None:
    """The vagrant user, and the container's command."""
    vagrant_user(root, rec.insecure_key)
    init = root / INIT.lstrip("/")
    init.write_text(INIT_SCRIPT)
    init.chmod(0o755)
    (root / "usr/sbin/policy-rc.d").unlink()
    (root / "etc/resolv.conf").unlink()  # Docker provides one per container


def _import(console: Console, root: Path, tag: str, log: Path) -> None:
    console.print(f"image: docker import as {tag}")
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        result = subprocess.run(
            ["docker", "import", "--change", f'CMD ["{INIT}"]', "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            env={**os.environ, **engine.env()},
            check=False,
        )
    finally:
        tar.stdout.close()
        tar.wait()
    with log.open("a") as out:
        out.write(result.stdout + result.stderr)
    if result.returncode != 0 or tar.returncode != 0:
        raise EdgesimError(Problem("docker import", result.stderr.strip() or f"tar exit {tar.returncode}"))
