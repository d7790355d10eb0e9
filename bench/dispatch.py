"""Socket dispatch benchmark: "every port of a prefix" through sk_lookup and through an nftables tproxy rule,
side by side in one run: connection set-up rate and p99 for the same proxy, the same origin, the same client.

The lab's spectrum prefix goes through sk_lookup to the spectrum proxy's one socket. For the comparison the
benchmark adds, on every edge, a second prefix of the VIP pool (local on the loopback, as the spectrum one)
with a `tproxy` rule (the seed's older approach) to a second proxy instance with an IP_TRANSPARENT socket,
and removes them at the end. Each connection: connect, one line to the origin and back, close.

Run as root: `.venv/bin/python bench/dispatch.py` (brings up and removes its own lab), or `--lab NAME`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from ipaddress import IPv4Network

from rich.console import Console
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import namespaces, netlink, nft, runtime
from edgesim.errors import Problem
from edgesim.nftexpr import base_chain, delete_table, match, replace_table, rule, set_mark
from edgesim.plan import LabPlan
from edgesim.waiting import wait_until

LAB = "dispbench"
CLIENT = "client1"
TPROXY_PREFIX = IPv4Network("198.51.100.128/26")
TPROXY_LISTEN = ("127.0.0.1", 7001)
TPROXY_TABLE = "edgesim_bench_tproxy"
console = Console(width=140)


def tproxy_rules() -> list:
    """nftables: TCP to any port of TPROXY_PREFIX goes to the transparent proxy's socket."""
    tproxy = {"tproxy": {"family": "ip", "addr": TPROXY_LISTEN[0], "port": TPROXY_LISTEN[1]}}
    body = [
        base_chain("prerouting", "prerouting", "mangle", "accept"),
        rule(
            "prerouting",
            match(
                {"payload": {"protocol": "ip", "field": "daddr"}},
                {"prefix": {"addr": str(TPROXY_PREFIX.network_address), "len": TPROXY_PREFIX.prefixlen}},
            ),
            match({"meta": {"key": "l4proto"}}, "tcp"),
            set_mark(1),
            tproxy,
        ),
    ]
    return replace_table(TPROXY_TABLE, body)


def setup_tproxy(plan: LabPlan) -> list[subprocess.Popen]:
    """On every edge: the prefix local, the rule, and a transparent proxy; returns the proxies."""
    backend = runtime.backend(plan.lab)
    origin = next(s for s in plan.nodes["edge1"].services if s.name == "spectrum").args
    origin_addr = origin[origin.index("--origin") + 1]
    proxies = []
    for edge in plan.nodes_with_role("edge"):
        with backend.netlink(edge) as ipr:
            netlink.add_address(ipr, netlink.index_of(ipr, "lo") or 1, str(TPROXY_PREFIX))
        nft.json_cmd(edge.netns, tproxy_rules(), lambda e: Problem("tproxy", e))
        argv = [sys.executable, "-m", "edgesim.dispatch.spectrum", "--name", edge.name, "--transparent"]
        argv += ["--listen", f"{TPROXY_LISTEN[0]}:{TPROXY_LISTEN[1]}", "--origin", origin_addr]
        proxies.append(backend.popen(edge, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return proxies


def teardown_tproxy(plan: LabPlan, proxies: list[subprocess.Popen]) -> None:
    """Stop the proxies, remove the rule and the prefix (whatever of them exists)."""
    for process in proxies:
        process.terminate()
        process.wait(timeout=10)
    backend = runtime.backend(plan.lab)
    for edge in plan.nodes_with_role("edge"):
        nft.try_json_cmd(edge.netns, delete_table(TPROXY_TABLE))
        with backend.netlink(edge) as ipr:
            netlink.remove_address(ipr, netlink.index_of(ipr, "lo") or 1, str(TPROXY_PREFIX))


async def _one(address: str, port: int, timeout: float) -> tuple[float, float] | None:
    """(connect ms, connect + echo ms) of one connection, None when it failed."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
        connected = time.perf_counter()
        writer.write(b"ping\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        done = time.perf_counter()
        writer.close()
    except (OSError, TimeoutError):
        return None
    if line != b"ping\n":
        return None
    return (connected - started) * 1000, (done - started) * 1000


async def _load(prefix: IPv4Network, count: int, concurrency: int, timeout: float) -> tuple[list, float]:
    rng = random.Random(count)
    hosts = [str(a) for a in prefix.hosts()]
    targets = [(rng.choice(hosts), rng.randrange(1, 65536)) for _ in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def guarded(address: str, port: int) -> tuple[float, float] | None:
        async with gate:
            return await _one(address, port, timeout)

    started = time.perf_counter()
    results = await asyncio.gather(*(guarded(a, p) for a, p in targets))
    return list(results), time.perf_counter() - started


def load_from_client(plan: LabPlan, prefix: IPv4Network, count: int, concurrency: int) -> tuple[list, float]:
    """Connections from the client to random ports of `prefix`; (results, seconds)."""
    with namespaces.inside(plan.nodes[CLIENT].netns):
        return asyncio.run(_load(prefix, count, concurrency, 3.0))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def bench(plan: LabPlan, count: int, concurrency: int, rounds: int) -> Table:
    """The table: both ways, alternating rounds so that the host's load falls on both alike."""
    assert plan.dispatch is not None
    spectrum = next(b.prefix for b in plan.dispatch.table.bindings if b.label == "spectrum")
    ways = {"sk_lookup": spectrum, "nftables tproxy": TPROXY_PREFIX}
    proxies = setup_tproxy(plan)
    try:
        # The proxies accept before the rounds start.
        wait_until(
            lambda: all(load_from_client(plan, p, 4, 4)[0].count(None) == 0 for p in ways.values()),
            timeout=30,
            interval=0.5,
        )
        results: dict[str, list] = {way: [] for way in ways}
        seconds = dict.fromkeys(ways, 0.0)
        for _ in range(rounds):
            for way, prefix in ways.items():
                got, took = load_from_client(plan, prefix, count, concurrency)
                results[way] += got
                seconds[way] += took
    finally:
        teardown_tproxy(plan, proxies)
    table = Table(
        title=f"all ports of a prefix, {rounds} x {count} connections from {CLIENT} to random ports "
        f"({concurrency} at a time; connect, one line to the origin and back)"
    )
    for column in ("way", "prefix", "ok", "conn/s", "connect p50 ms", "connect p99 ms", "echo p99 ms"):
        table.add_column(column, justify="right")
    for way, prefix in ways.items():
        ok = [r for r in results[way] if r is not None]
        table.add_row(
            way,
            str(prefix),
            f"{len(ok)}/{len(results[way])}",
            f"{len(ok) / seconds[way]:,.0f}",
            f"{_quantile([r[0] for r in ok], 0.5):.2f}",
            f"{_quantile([r[0] for r in ok], 0.99):.2f}",
            f"{_quantile([r[1] for r in ok], 0.99):.2f}",
        )
    return table


def main() -> None:
    """Bring up a lab (or use a running one), compare, print the table, remove the lab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", help="a running lab with a dispatch: section (default: bring one up)")
    parser.add_argument("--connections", type=int, default=500, help="connections per round and way")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at a time")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, alternating the two ways")
    args = parser.parse_args()
    if args.lab:
        console.print(bench(runtime.running_plan(args.lab), args.connections, args.concurrency, args.rounds))
        return
    with console.status("bringing up the benchmark lab"):
        plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=LAB, console=Console(quiet=True)).plan
    try:
        console.print(bench(plan, args.connections, args.concurrency, args.rounds))
    finally:
        lab_api.down(LAB, quiet=True)


if __name__ == "__main__":
    main()
