"""Map access through bcc's own key and leaf types, which bcc builds from each map's C types.

Python describes what a map should hold without a loaded program (so that it can be computed and tested
without root): a plain int for a scalar key or value, a NamedTuple naming the struct's fields for a struct.
A description may leave out fields that are padding or the program's own state; they are written as zero
and ignored when comparing. `encode` turns a description into the map's type, `decode` reads one back, and
`sync` brings a hash-like map to a wanted content by diff.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any, TypeVar

# An int, or a NamedTuple whose fields are named as the C struct's.
Description = int | tuple[Any, ...]
D = TypeVar("D", int, tuple[Any, ...])


def be32(address: IPv4Address) -> int:
    """An IPv4 address as the u32 whose memory holds it in network byte order (a __be32 in C)."""
    return int.from_bytes(address.packed, sys.byteorder)


def from_be32(value: int) -> IPv4Address:
    """The address a __be32 holds."""
    return IPv4Address(value.to_bytes(4, sys.byteorder))


def encode(ctype: Any, value: Description) -> Any:
    """A description as an instance of bcc's ctypes type for the map's key or leaf."""
    if isinstance(value, tuple):
        return ctype(**value._asdict())  # type: ignore[attr-defined]
    return ctype(value)


def decode(cvalue: Any, like: type[D]) -> D:
    """A key or leaf read from a map, as a description of type `like` (int or a NamedTuple)."""
    if like is int:
        return cvalue.value  # type: ignore[no-any-return]
    fields = like._fields  # type: ignore[union-attr]
    return like(**{name: _plain(getattr(cvalue, name)) for name in fields})


def _plain(value: Any) -> Any:
    """A struct field as Python sees it: ints stay ints, arrays become tuples."""
    return tuple(value) if isinstance(value, ctypes.Array) else value


def sync(table: Any, wanted: Mapping[Any, Any], key_type: type, value_type: type) -> int:
    """Make a hash or LPM map hold exactly `wanted` (descriptions to descriptions); return the changes.

    Entries that are not wanted are deleted, missing or different ones written, equal ones left alone.
    """
    current = {decode(k, key_type): decode(v, value_type) for k, v in table.items()}
    changes = 0
    for key in current.keys() - wanted.keys():
        del table[encode(table.Key, key)]
        changes += 1
    for key, value in wanted.items():
        if current.get(key) != value:
            table[encode(table.Key, key)] = encode(table.Leaf, value)
            changes += 1
    return changes


def fields(ctype: Any) -> tuple[str, ...]:
    """The field names of a bcc struct type, without the padding bcc adds for the compiler's alignment."""
    return tuple(name for name, *_ in ctype._fields_ if not name.startswith("__pad"))
