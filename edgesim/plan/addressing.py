"""Addresses from the pools: /31s for links, the infra pool's /24 blocks, the GRE endpoint. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

from edgesim.errors import EdgesimError, Problem

# The infra pool in /24 blocks, one per use; block 0 (router links) is the one plans had before tenants.
INFRA_BLOCKS = {"router links": 0, "management": 1, "tenant veths": 2, "customer sites": 3, "backplane": 4}


def first_subnet(pool: IPv4Network, prefixlen: int = 24) -> IPv4Network:
    """The first /prefixlen of a pool (the pool itself when it is already that small)."""
    if pool.prefixlen >= prefixlen:
        return pool
    return next(pool.subnets(new_prefix=prefixlen))


def infra_block_if_room(pool: IPv4Network, use: str) -> IPv4Network | None:
    """The /24 of the infra pool set aside for `use` (INFRA_BLOCKS), or None when the pool has no room."""
    index = INFRA_BLOCKS[use]
    if index == 0:
        return first_subnet(pool)
    if pool.prefixlen > 24 or index >= 2 ** (24 - pool.prefixlen):
        return None
    return IPv4Network((int(pool.network_address) + index * 256, 24))


def infra_block(pool: IPv4Network, use: str) -> IPv4Network:
    """The /24 of the infra pool set aside for `use` (INFRA_BLOCKS); an error when the pool is too small."""
    block = infra_block_if_room(pool, use)
    if block is None:
        raise EdgesimError(
            Problem(
                "pools.infra",
                f"{pool} has no /24 left for {use} (labs with tenants use {len(INFRA_BLOCKS)} of them)",
                "use a /22 or larger",
            )
        )
    return block


def gre_endpoint(pool: IPv4Network) -> IPv4Address:
    """The anycast GRE endpoint: the first host address of pools.gre."""
    return pool[1] if pool.num_addresses > 1 else pool.network_address


def host_address(cidr: str) -> str:
    """The address of a CIDR, without its prefix length."""
    return cidr.split("/")[0]


class Allocator:
    """Hands out /31 point-to-point subnets from a pool, in order."""

    def __init__(self, pool: IPv4Network, field: str) -> None:
        self._subnets: Iterator[IPv4Network] = pool.subnets(new_prefix=31)
        self._pool = pool
        self._field = field

    def next(self) -> IPv4Network:
        """The next free /31, or an error naming the pool that ran out."""
        try:
            return next(self._subnets)
        except StopIteration:
            raise EdgesimError(
                Problem(self._field, f"{self._pool} has no /31 left for another link", "use a larger pool")
            ) from None
