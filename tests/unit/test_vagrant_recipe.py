"""The Vagrant docker provider's pieces that need no engine: image recipe, engine config, scratch copy."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from edgesim.lab import REPO_ROOT
from edgesim.vagrant import engine, image, job

MGMT = IPv4Network("198.19.0.0/16")
KEY = "ssh-rsa AAAA test\n"


def test_the_image_carries_every_package_of_the_host_role_and_the_generic_headers() -> None:
    defaults = yaml.safe_load((REPO_ROOT / "roles/host/defaults/main.yml").read_text())
    packages = image.role_packages()
    assert set(defaults["host_packages"]) < set(packages)
    assert "linux-headers-amd64" in packages


def test_the_wheelhouse_has_the_build_backend_and_the_test_extras() -> None:
    wheels = image.wheel_requirements()
    assert "setuptools>=68" in wheels and "pip" in wheels
    assert any(w.startswith("pytest") for w in wheels) and any(w.startswith("pyroute2") for w in wheels)


def test_the_digest_follows_the_recipe() -> None:
    rec = image.Recipe(("a", "b"), ("pip",), KEY)
    assert rec.digest() == image.Recipe(("a", "b"), ("pip",), KEY).digest()
    assert rec.digest() != replace(rec, role_packages=("a", "b", "c")).digest()
    assert rec.digest() != replace(rec, wheels=("pip", "pytest")).digest()
    assert rec.tag == f"{image.IMAGE}:{rec.digest()}"


def test_the_engine_uses_only_the_management_range_and_no_nat() -> None:
    config = engine.daemon_config()
    assert config["iptables"] is False and config["ip-masq"] is False and config["ip-forward"] is False
    assert all(IPv4Network(p["base"]).subnet_of(MGMT) for p in config["default-address-pools"])
    assert engine.BRIDGE_ADDRESS.network.subnet_of(MGMT)
    # Its own socket and data: a user's daemon (and /etc/docker) is never touched.
    assert config["hosts"] == [engine.DOCKER_HOST] and not engine.DOCKER_HOST.endswith("/var/run/docker.sock")


def test_every_address_in_the_vagrantfile_is_in_the_management_range() -> None:
    # Comments may name Docker's and libvirt's own defaults (RFC 1918); the settings may not.
    code = "\n".join(line.split("#")[0] for line in (REPO_ROOT / "Vagrantfile").read_text().splitlines())
    addresses = re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", code)
    assert addresses, "the Vagrantfile names libvirt's management network"
    assert all(IPv4Address(a) in MGMT for a in addresses), addresses
    assert "--privileged" not in code, "docker run --privileged fails on kernels without CAP_SYS_RESOURCE"


def test_the_scratch_copy_leaves_out_venv_git_and_vagrant_state(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in (
        "Vagrantfile",
        ".venv/bin/python",
        ".git/HEAD",
        ".vagrant/machines/x",
        "edgesim/a.py",
        "edgesim/__pycache__/a.pyc",
    ):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x")
    copy = job.scratch_copy(tmp_path / "dest", source)
    found = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file())
    assert found == ["Vagrantfile", "edgesim/a.py"]


def test_the_vagrant_playbook_passes_ansible_syntax_check() -> None:
    ansible = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run(
        [str(ansible), "--syntax-check", "-i", "localhost,", str(job.PLAYBOOK)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    defaults = yaml.safe_load((REPO_ROOT / "roles/vagrant/defaults/main.yml").read_text())
    assert {"vagrant", "docker.io", "debootstrap", "rsync"} <= set(defaults["vagrant_packages"])
    assert set(job.TOOLS.values()) <= set(defaults["vagrant_packages"])
