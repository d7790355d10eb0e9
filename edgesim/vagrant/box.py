"""A Debian 12 libvirt box built locally: then `vagrant up --provider=libvirt` downloads nothing.

The root file system is the docker provider's guest (image.py: debootstrap, sshd, the vagrant user, the
host role's packages as a local apt repository and a wheelhouse) plus what a machine needs to boot: Debian's
own kernel (linux-image-amd64, 6.1), systemd, udev, DHCP by systemd-networkd, and extlinux in the disk's
first sector. The host role's packages are installed too (the guest's provisioning finds them present), all
but the kernel headers: those stay in the local repository, so that the role's own headers step installs the
running kernel's exact package, as on any Debian machine. Packaged as a libvirt box (a qcow2 disk,
metadata.json, a Vagrantfile), kept under the state directory and `vagrant box add`ed under a name carrying
the digest of its recipe: a second run with the same recipe skips the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgesim.errors import EdgesimError, Problem
from edgesim.vagrant import engine, image
from edgesim.vagrant.steps import capture, run_logged

BOX_PREFIX = "edgesim/bookworm-libvirt"
BOXES = engine.STATE / "boxes"
# What a machine needs beyond the container image: a kernel and its initramfs, an init that manages
# services, udev for the disk and the network card, D-Bus for hostnamectl (Vagrant sets the hostname).
VM_PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iputils-ping",
)
# The headers stay in the local repository: the role installs them, and which path it takes is the point.
NOT_PREINSTALLED = frozenset(image.EXTRA_ROLE_PACKAGES)
# Services the role stops and disables (labs run their own, one per node): off from the start, so that the
# first boot under emulation does not spend minutes starting them in the root namespace.
DISTRIBUTION_SERVICES = (
    "bird.service",
    "etcd.service",
    "prometheus.service",
    "prometheus-node-exporter.service",
)
DISK_GIB = 20
ROOT_LABEL = "edgesim-root"
# The kernel's console on the first serial port (libvirt's console, `virsh console`); classic interface
# names, so the management NIC is eth0 whatever its PCI slot.
KERNEL_ARGS = f"root=LABEL={ROOT_LABEL} ro console=ttyS0,115200 net.ifnames=0 biosdevname=0"
NETWORK_UNIT = "[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\n"
# sshd refuses to start without host keys: each machine makes its own before the unit's own check.
SSH_KEYS_DROPIN = (
    "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
)
FSTAB = f"LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1\n"
BOX_VAGRANTFILE = """# edgesim's Debian 12 box: extlinux boots Debian's kernel from the virtio disk.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
"""
# Commands the build runs on the host, and their packages (playbooks/vm.yml installs them).
TOOLS = {
    "debootstrap": "debootstrap",
    "qemu-img": "qemu-utils",
    "extlinux": "extlinux",
    "losetup": "mount",
    "mkfs.ext4": "e2fsprogs",
    "vagrant": "vagrant",
}


@dataclass(frozen=True)
class BoxRecipe:
    """The container image's recipe, the machine's packages and boot, and this module's procedure."""

    base: image.Recipe
    procedure: str

    def digest(self) -> str:
        """A short hash of everything the box is made of."""
        text = json.dumps(
            {
                "image": self.base.digest(),
                "vm": VM_PACKAGES,
                "kernel_args": KERNEL_ARGS,
                "disk_gib": DISK_GIB,
                "procedure": self.procedure,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        """The box's name in Vagrant."""
        return f"{BOX_PREFIX}-{self.digest()}"

    @property
    def path(self) -> Path:
        """The box file kept between runs."""
        return BOXES / f"{self.name.replace('/', '-')}.box"


@dataclass
class Built:
    """The box in Vagrant: its name, the box file, its size, and the build's seconds (0 when cached)."""

    name: str
    path: Path
    bytes: int
    build_seconds: float
    added: bool


def recipe() -> BoxRecipe:
    """The box recipe for this checkout."""
    return BoxRecipe(image.recipe(), Path(__file__).read_text())


def missing_tools() -> list[str]:
    """The host commands the build needs and lacks, with their packages."""
    return [f"{tool} ({package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]


def box_added(name: str, env: dict[str, str]) -> bool:
    """Whether Vagrant (at env's VAGRANT_HOME) has the box for the libvirt provider."""
    result = capture(["vagrant", "box", "list", "--machine-readable"], env=env)
    if result.returncode != 0:
        raise EdgesimError(Problem("vagrant box list", result.stderr.strip() or result.stdout.strip()))
    # "time,target,box-name,NAME" is followed by "time,target,box-provider,libvirt".
    fields = [line.split(",") for line in result.stdout.splitlines()]
    names = [f[3] for f in fields if len(f) > 3 and f[2] == "box-name"]
    providers = [f[3] for f in fields if len(f) > 3 and f[2] == "box-provider"]
    return (name, "libvirt") in zip(names, providers, strict=False)


def ensure(console: Console, rec: BoxRecipe, log: Path, env: dict[str, str]) -> Built:
    """Build the box file unless it is kept, and add it to Vagrant unless it has it; say which was done."""
    missing = missing_tools()
    if missing:
        raise EdgesimError(
            Problem(
                "vagrant box", f"missing: {', '.join(missing)}", "sudo ./bootstrap vagrant box installs them"
            )
        )
    seconds = 0.0
    if rec.path.exists():
        console.print(
            f"box file {rec.path} is kept from an earlier build ({rec.path.stat().st_size / 1e6:.0f} MB)"
        )
    else:
        started = time.monotonic()
        _build(console, rec, log)
        seconds = time.monotonic() - started
        console.print(f"box {rec.name} built in {seconds:.0f} s ({rec.path.stat().st_size / 1e6:.0f} MB)")
    added = False
    if box_added(rec.name, env):
        console.print(f"Vagrant has the box {rec.name}")
    else:
        argv = ["vagrant", "box", "add", "--force", "--name", rec.name, str(rec.path)]
        run_logged(console, "vagrant box add", argv, log, env=env, echo=False)
        added = True
        console.print(f"box added to Vagrant as {rec.name}")
    for old in BOXES.glob(f"{BOX_PREFIX.replace('/', '-')}-*.box"):
        if old != rec.path:
            old.unlink()  # one recipe at a time: an older box would never be used again
            console.print(f"removed the box file of an older recipe, {old.name}")
    return Built(rec.name, rec.path, rec.path.stat().st_size, seconds, added)


def _build(console: Console, rec: BoxRecipe, log: Path) -> None:
    work = engine.STATE / f"box-build-{rec.digest()}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "rootfs"
    try:
        image.base_rootfs(console, root, log)
        with image.chroot_mounts(root):
            _machine_packages(console, root, log)
            image.offline_repository(console, root, rec.base, log)
            _role_packages(console, root, rec.base, log)
        image.wheelhouse(console, root, rec.base, log)
        image.vagrant_user(root, rec.base.insecure_key)
        release = _configure(root)
        raw = work / "disk.raw"
        _disk(console, root, raw, release, log)
        shutil.rmtree(root)  # the disk has it now; half the build's space back before the conversion
        _package(console, raw, work, rec.path, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _machine_packages(console: Console, root: Path, log: Path) -> None:
    console.print(f"box: kernel and boot packages ({', '.join(VM_PACKAGES)})")
    image.in_root(
        console,
        "box: machine packages",
        root,
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
        f"{' '.join(VM_PACKAGES)} && apt-get clean",
        log,
    )


def _role_packages(console: Console, root: Path, rec: image.Recipe, log: Path) -> None:
    """Install the role's packages from the local repository, as the role would, but not the headers."""
    packages = [p for p in rec.role_packages if p not in NOT_PREINSTALLED]
    console.print(f"box: {len(packages)} of the host role's packages pre-installed (not the kernel headers)")
    image.in_root(
        console,
        "box: role packages",
        root,
        # The role preseeds the same answer; without it the install stops at debconf's question.
        "echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections\n"
        f"apt-get install -y -qq --no-install-recommends {' '.join(packages)}\n"
        f"for unit in {' '.join(DISTRIBUTION_SERVICES)}; do\n"
        '  if [ -e "/lib/systemd/system/$unit" ]; then systemctl disable "$unit"; fi\n'
        "done\n"
        "apt-get clean",
        log,
    )


def _configure(root: Path) -> str:
    """Boot and network configuration; return the installed kernel's release."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise EdgesimError(Problem("box", f"expected one kernel in /boot, found {[k.name for k in kernels]}"))
    release = kernels[0].name.removeprefix("vmlinuz-")
    if not (root / "boot" / f"initrd.img-{release}").exists():
        raise EdgesimError(Problem("box", f"no initramfs for {release} in /boot"))
    (root / "etc/fstab").write_text(FSTAB)
    (root / "etc/hostname").write_text("edgesim\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 edgesim\n")
    (root / "etc/machine-id").write_text("")  # each machine makes its own at first boot
    (root / "etc/systemd/network/50-dhcp.network").write_text(NETWORK_UNIT)
    dropin = root / "etc/systemd/system/ssh.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "host-keys.conf").write_text(SSH_KEYS_DROPIN)
    # Vagrant waits for sshd itself; waiting for "online" first would only delay the boot.
    units = "systemd-networkd.service ssh.service"
    subprocess.run(["chroot", str(root), "sh", "-c", f"systemctl enable {units}"], check=True)
    subprocess.run(
        ["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online.service"], check=True
    )
    (root / "usr/sbin/policy-rc.d").unlink()
    (root / "etc/resolv.conf").unlink(missing_ok=True)  # the host's, copied for the chroot's downloads
    return release


def _disk(console: Console, root: Path, raw: Path, release: str, log: Path) -> None:
    """A sparse raw disk that is one ext4 file system, extlinux in its boot sector (no partition table).

    Unpartitioned on purpose: extlinux records the file system's offset on the disk as the kernel reports
    it for the device it installs to, and a loop device at an offset reports none (nor does every kernel
    scan a loop device's partition table). BIOS loads the first sector, which is extlinux's own.
    """
    console.print(f"box: {DISK_GIB} GiB disk, one ext4 file system, extlinux booting {release}")
    with raw.open("wb") as f:
        f.truncate(DISK_GIB << 30)
    with _loop(raw) as device:
        # extlinux reads ext4 without the 64bit feature only.
        mkfs = ["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-O", "^64bit", device]
        run_logged(console, "mkfs.ext4", mkfs, log, echo=False)
        mnt = raw.parent / "mnt"
        mnt.mkdir()
        subprocess.run(["mount", device, str(mnt)], check=True)
        try:
            subprocess.run(["cp", "-a", f"{root}/.", str(mnt)], check=True)
            (mnt / "boot/extlinux").mkdir()
            (mnt / "boot/extlinux/extlinux.conf").write_text(
                "DEFAULT debian\nTIMEOUT 0\nPROMPT 0\n"
                f"LABEL debian\n  LINUX /boot/vmlinuz-{release}\n  INITRD /boot/initrd.img-{release}\n"
                f"  APPEND {KERNEL_ARGS}\n"
            )
            install = ["extlinux", "--install", str(mnt / "boot/extlinux")]
            run_logged(console, "extlinux", install, log, echo=False)
        finally:
            subprocess.run(["umount", str(mnt)], check=True)


@contextlib.contextmanager
def _loop(raw: Path) -> Iterator[str]:
    """The raw disk as a loop device, detached afterwards."""
    argv = ["losetup", "--find", "--show", str(raw)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EdgesimError(Problem("losetup", result.stderr.strip(), "the build needs a loop device"))
    device = result.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


def _package(console: Console, raw: Path, work: Path, box: Path, log: Path) -> None:
    """qcow2 disk, metadata.json and Vagrantfile in a tar: the libvirt box format."""
    console.print("box: qcow2 and box file")
    disk = work / "box.img"
    run_logged(
        console,
        "qemu-img convert",
        ["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)],
        log,
        echo=False,
    )
    raw.unlink()
    (work / "metadata.json").write_text(
        json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB})
    )
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    box.parent.mkdir(parents=True, exist_ok=True)
    staging = box.with_suffix(".tmp")
    with tarfile.open(staging, "w") as tar:
        for name in ("metadata.json", "Vagrantfile", "box.img"):
            tar.add(work / name, arcname=name)
    staging.replace(box)
