"""libvirt's daemons for the VM job, started by hand where no systemd starts them, and what they hold.

When libvirtd already answers (a host with systemd, or a user's own) the job uses it and leaves it running;
otherwise it starts virtlogd and libvirtd under `nice` (the guest's QEMU inherits it: under TCG it takes
every core it gets) and stops both afterwards. It refuses to start libvirtd while a network outside
198.19.0.0/16 is marked autostart (libvirt's `default`, 192.168.122.0/24): libvirtd would start it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import xml.etree.ElementTree as ET
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from edgesim import guard, namespaces
from edgesim.errors import EdgesimError, Problem
from edgesim.vagrant import engine
from edgesim.vagrant.steps import capture
from edgesim.waiting import wait_until

URI = "qemu:///system"
RUN = engine.RUN
LOG_DIR = engine.STATE
NICE = 10
START_TIMEOUT = 60.0
AUTOSTART = Path("/etc/libvirt/qemu/networks/autostart")
# Every network that libvirt or Vagrant makes for edgesim: DESIGN.md's management range.
ALLOWED = IPv4Network("198.19.0.0/16")
# The job's storage pool (vagrant-libvirt would make a persistent `default` one): transient, under libvirt's
# own images directory, which the guest's QEMU (user libvirt-qemu) can reach.
POOL = "edgesim-vagrant"
POOL_DIR = Path("/var/lib/libvirt/images/edgesim-vagrant")
# The Vagrantfile's management network.
NETWORK = "edgesim-mgmt"
DAEMONS = ("virtlogd", "libvirtd")


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    """Run virsh against the system connection."""
    return capture(["virsh", "--connect", URI, "--quiet", *args])


def _checked(*args: str) -> list[str]:
    result = virsh(*args)
    if result.returncode != 0:
        raise EdgesimError(
            Problem(f"virsh {' '.join(args[:2])}", result.stderr.strip() or result.stdout.strip())
        )
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def running() -> bool:
    """Whether libvirtd answers on its socket."""
    return virsh("version").returncode == 0


def _pidfile(daemon: str) -> Path:
    return RUN / f"{daemon}.pid"


def _pid(daemon: str) -> int | None:
    try:
        return int(_pidfile(daemon).read_text().strip())
    except (OSError, ValueError):
        return None


def network_addresses(xml: str) -> list[IPv4Interface]:
    """The IPv4 addresses of a libvirt network's definition."""
    found = []
    for ip in ET.fromstring(xml).iter("ip"):
        if ip.get("family", "ipv4") != "ipv4" or ip.get("address") is None:
            continue
        mask = ip.get("prefix") or ip.get("netmask") or "32"
        found.append(IPv4Interface(f"{ip.get('address')}/{mask}"))
    return found


def foreign(addresses: list[IPv4Interface]) -> list[IPv4Interface]:
    """The addresses outside 198.19.0.0/16."""
    return [a for a in addresses if not a.network.subnet_of(ALLOWED)]


def foreign_autostart_networks(directory: Path = AUTOSTART) -> list[str]:
    """Networks libvirtd would start by itself whose addresses are outside 198.19.0.0/16."""
    found = []
    for path in sorted(directory.glob("*.xml")) if directory.is_dir() else []:
        bad = foreign(network_addresses(path.read_text()))
        if bad:
            found.append(f"{path.stem} ({', '.join(map(str, bad))})")
    return found


def start() -> bool:
    """Start virtlogd and libvirtd unless libvirtd answers; return whether this call started them."""
    if running():
        return False
    bad = foreign_autostart_networks()
    if bad:
        names = " ".join(b.split()[0] for b in bad)
        raise EdgesimError(
            Problem(
                "libvirt",
                f"networks outside 198.19.0.0/16 are set to start with libvirtd: {', '.join(bad)}",
                f"virsh net-autostart --disable {names}",
            )
        )
    RUN.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for daemon in DAEMONS:
        _spawn(daemon)
    wait_until(
        _daemons_up,
        timeout=START_TIMEOUT,
        interval=0.5,
        failure=lambda _: Problem(
            "libvirtd", f"not answering after {START_TIMEOUT:.0f} s", f"see {LOG_DIR / 'libvirtd.log'}"
        ),
    )
    return True


def _spawn(daemon: str) -> None:
    with (LOG_DIR / f"{daemon}.log").open("a") as log:
        try:
            proc = subprocess.Popen(
                ["nice", "-n", str(NICE), daemon, "--pid-file", str(_pidfile(daemon))],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed with the terminal's process group; stop() ends it
            )
        except OSError as exc:
            raise EdgesimError(
                Problem(daemon, f"cannot start it: {exc}", "install libvirt-daemon-system")
            ) from exc
    _children[daemon] = proc


_children: dict[str, subprocess.Popen[bytes]] = {}


def _daemons_up() -> bool:
    for daemon, proc in _children.items():
        if proc.poll() is not None:
            raise EdgesimError(
                Problem(daemon, f"exited with status {proc.returncode}", f"see {LOG_DIR / (daemon + '.log')}")
            )
    return running()


def stop() -> None:
    """Stop libvirtd, then virtlogd (libvirtd may still write a guest's log through it)."""
    for daemon in reversed(DAEMONS):
        pid = _pid(daemon)
        if pid is None or not namespaces.process_alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        wait_until(
            lambda pid=pid: not namespaces.process_alive(pid),
            timeout=60,
            interval=0.3,
            failure=lambda _, daemon=daemon, pid=pid: Problem(daemon, f"pid {pid} did not exit within 60 s"),
        )
    _children.clear()


def daemon_leftovers() -> list[str]:
    """The daemons this module started, when they should be gone."""
    alive = [(d, pid) for d in DAEMONS if (pid := _pid(d)) is not None and namespaces.process_alive(pid)]
    return [f"{daemon} process {pid}" for daemon, pid in alive]


def ensure_pool() -> None:
    """The job's transient storage pool (a directory under libvirt's images), created unless it is there."""
    if POOL in _checked("pool-list", "--all", "--name"):
        return
    POOL_DIR.mkdir(parents=True, exist_ok=True)
    _checked("pool-create-as", POOL, "dir", "--target", str(POOL_DIR))


def volumes() -> list[str]:
    """The names of the job's pool's volumes (`vol-list` prints a name and a path per line)."""
    return [line.split()[0] for line in _checked("vol-list", POOL)]


def remove_pool() -> None:
    """Delete the pool's volumes (the box's image, a guest's disk), the pool, and its directory.

    The directory is the job's own: what a pool that vanished with its daemon left there goes too.
    """
    if running() and POOL in _checked("pool-list", "--all", "--name"):
        for volume in volumes() if POOL in _checked("pool-list", "--name") else []:
            _checked("vol-delete", "--pool", POOL, volume)
        _checked("pool-destroy", POOL)
    guard.remove_tree(POOL_DIR, POOL_DIR.parent)


def active_networks() -> dict[str, list[IPv4Interface]]:
    """Active libvirt networks and their addresses."""
    return {
        name: network_addresses("\n".join(_checked("net-dumpxml", name)))
        for name in _checked("net-list", "--name")
    }


def leftovers(domain_prefix: str) -> list[str]:
    """What the job leaves in libvirt: its domains, pool and network, and any network outside 198.19/16."""
    found = [f"domain {d}" for d in _checked("list", "--all", "--name") if d.startswith(domain_prefix)]
    if POOL in _checked("pool-list", "--all", "--name"):
        found.append(f"storage pool {POOL} ({', '.join(volumes()) or 'empty'})")
    if NETWORK in _checked("net-list", "--all", "--name"):
        found.append(f"network {NETWORK}")
    for name, addresses in active_networks().items():
        if foreign(addresses):
            found.append(f"active network {name} outside 198.19.0.0/16 ({', '.join(map(str, addresses))})")
    return found


def process_leftovers(domain_prefix: str) -> list[str]:
    """The job's QEMU and its network's dnsmasq, and the job's pool directory, when all should be gone."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"guest={domain_prefix}" in command or f"/dnsmasq/{NETWORK}.conf" in command:
            found.append(f"process {proc.name}: {command[:120]}")
    if POOL_DIR.exists():
        found.append(f"directory {POOL_DIR}")
    return found


# libvirt's networks put their rules into chains of its own, through iptables (iptables-nft here): the
# chains, and the tables iptables-nft makes for them, stay after the last network is gone.
_IPTABLES = ("iptables", "ip6tables")
_TABLES = ("filter", "nat", "mangle")


def nft_tables() -> set[tuple[str, str]]:
    """The host's nftables tables, as (family, name)."""
    result = capture(["nft", "-j", "list", "tables"])
    if result.returncode != 0:
        return set()
    items = json.loads(result.stdout).get("nftables", [])
    return {(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i}


def _rules(family: str, table: str) -> int:
    result = capture(["nft", "-j", "list", "table", family, table])
    if result.returncode != 0:
        return 0
    return sum(1 for i in json.loads(result.stdout).get("nftables", []) if "rule" in i)


def libvirt_chains() -> dict[tuple[str, str], dict[str, list[str]]]:
    """libvirt's chains per (command, table): each chain's own rules (as `-S` prints them)."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for command in _IPTABLES:
        for table in _TABLES:
            result = capture([command, "-w", "-t", table, "-S"])
            if result.returncode != 0:
                continue
            chains: dict[str, list[str]] = {}
            for line in result.stdout.splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] in ("-N", "-A") and words[1].startswith("LIBVIRT_"):
                    chains.setdefault(words[1], []).extend([line] if words[0] == "-A" else [])
            if chains:
                found[(command, table)] = chains
    return found


def remove_firewall(tables_before: set[tuple[str, str]]) -> None:
    """Remove libvirt's chains once they are empty, then the tables made for them that nothing else uses."""
    for (command, table), chains in libvirt_chains().items():
        listing = capture([command, "-w", "-t", table, "-S"]).stdout.splitlines()
        for chain, rules in chains.items():
            if rules:
                continue  # a network still uses it: not ours to remove
            for line in listing:
                words = line.split()
                if words[:1] == ["-A"] and words[-2:] == ["-j", chain]:
                    capture([command, "-w", "-t", table, "-D", *words[1:]])
            capture([command, "-w", "-t", table, "-X", chain])
    for family, name in nft_tables() - tables_before:
        if _rules(family, name) == 0:
            capture(["nft", "delete", "table", family, name])


def firewall_leftovers(tables_before: set[tuple[str, str]]) -> list[str]:
    """libvirt's chains, and tables that were not there before the job, still in the host's firewall."""
    found = [
        f"{command} -t {table} chain {chain}"
        for (command, table), chains in libvirt_chains().items()
        for chain in chains
    ]
    found += [f"nftables table {family} {name}" for family, name in sorted(nft_tables() - tables_before)]
    return found
