"""Map access on a map fd, as bcc's tables offer it (`Key`, `Leaf`, items, [key], batch update), without
libbcc: the key and leaf types are built from the descriptions bcc recorded when it compiled the program.

Only what edgesim's agents and tests use is here; the behaviour follows bcc.table (arrays take int keys and
zero on delete, per-CPU maps read a list of one value per possible CPU, a prog array takes a program fd).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

from edgesim.bpf import syscall

# uapi/linux/bpf.h: enum bpf_map_type (the ones a table is offered for).
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11

# bcc's names of C scalar types in a key or leaf description (bcc.BPF.str2ctype).
_SCALARS: dict[str, Any] = {
    "_Bool": ctypes.c_bool,
    "char": ctypes.c_char,
    "wchar_t": ctypes.c_wchar,
    "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short,
    "unsigned short": ctypes.c_ushort,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "long": ctypes.c_long,
    "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "long double": ctypes.c_longdouble,
    "__int128": ctypes.c_int64 * 2,
    "unsigned __int128": ctypes.c_uint64 * 2,
}
_AGGREGATES = ("struct", "union", "struct_packed")


def ctype(desc: Any) -> Any:
    """The ctypes type for bcc's JSON description of a C type (as bcc.BPF._decode_table_type builds it)."""
    if isinstance(desc, str):
        if desc not in _SCALARS:
            raise ValueError(f"unknown scalar type {desc!r}")
        return _SCALARS[desc]
    if not isinstance(desc, list) or len(desc) < 2 or not isinstance(desc[1], list):
        raise ValueError(f"not a type description: {desc!r}")
    anonymous: list[str] = []
    fields: list[tuple[Any, ...]] = []
    for item in desc[1]:
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise ValueError(f"not a field description: {item!r}")
        if len(item) == 2:
            fields.append((item[0], ctype(item[1])))
        elif len(item) == 3 and isinstance(item[2], list):
            fields.append((item[0], ctype(item[1]) * int(item[2][0])))
        elif len(item) == 3 and isinstance(item[2], int):
            fields.append((item[0], ctype(item[1]), item[2]))  # a bit field
        elif len(item) == 3 and item[2] in _AGGREGATES:
            name = item[0] or f"__anon{len(anonymous)}"
            if not item[0]:
                anonymous.append(name)
            fields.append((name, ctype(item)))
        else:
            raise ValueError(f"not a field description: {item!r}")
    kind = desc[2] if len(desc) > 2 else "struct"
    base = ctypes.Union if kind == "union" else ctypes.Structure
    body: dict[str, Any] = {"_anonymous_": anonymous, "_fields_": fields}
    if kind == "struct_packed":
        body["_pack_"] = 1
    return type(str(desc[0]), (base,), body)


class Table:
    """A hash-like map (hash, LRU hash, LPM trie): KeyError for a missing key, iteration over its keys."""

    def __init__(self, fd: int, name: str, map_type: int, max_entries: int, key: Any, leaf: Any) -> None:
        self.map_fd = fd
        self.name = name
        self.ttype = map_type
        self.max_entries = max_entries
        self.Key = key
        self.Leaf = leaf

    def get_fd(self) -> int:
        """The map's fd (bcc's name for it)."""
        return self.map_fd

    def _key(self, key: Any) -> Any:
        return key

    def __getitem__(self, key: Any) -> Any:
        leaf = self.Leaf()
        if not syscall.map_lookup(self.map_fd, self._key(key), leaf):
            raise KeyError(key)
        return leaf

    def __setitem__(self, key: Any, leaf: Any) -> None:
        try:
            syscall.map_update(self.map_fd, self._key(key), leaf)
        except OSError as exc:
            raise Exception(f"Could not update table: {exc.strerror}") from exc  # bcc's message

    def __delitem__(self, key: Any) -> None:
        if not syscall.map_delete(self.map_fd, self._key(key)):
            raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        key = None
        while True:
            following = self.Key()
            if not syscall.map_next_key(self.map_fd, key, following):
                return
            yield following
            key = following

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: Any) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def keys(self) -> Iterator[Any]:
        """The keys, read one after another (the map may change meanwhile)."""
        return iter(self)

    def items(self) -> list[tuple[Any, Any]]:
        """(key, value) pairs; a key deleted between reading it and its value is left out."""
        found = []
        for key in list(self):
            try:
                found.append((key, self[key]))
            except KeyError:
                pass
        return found

    def values(self) -> list[Any]:
        """The values (as items() reads them)."""
        return [value for _, value in self.items()]

    def clear(self) -> None:
        """Delete every entry."""
        for key in list(self):
            try:
                del self[key]
            except KeyError:
                pass

    def items_lookup_batch(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value), read in batches (BPF_MAP_LOOKUP_BATCH); keys of scalar type come as ints."""
        keys, values = (self.Key * self.max_entries)(), (self.Leaf * self.max_entries)()
        token = ctypes.create_string_buffer(max(8, ctypes.sizeof(self.Key)))
        total = 0
        while total < self.max_entries:
            try:
                count, done = syscall.map_lookup_batch(
                    self.map_fd,
                    token,
                    total == 0,
                    ctypes.addressof(keys) + total * ctypes.sizeof(self.Key),
                    ctypes.addressof(values) + total * ctypes.sizeof(self.Leaf),
                    self.max_entries - total,
                )
            except OSError as exc:
                raise Exception(f"BPF_MAP_LOOKUP_BATCH has failed: {exc.strerror}") from exc
            total += count
            if done or count == 0:
                break
        for index in range(total):
            yield keys[index], values[index]

    def items_update_batch(self, keys: ctypes.Array, values: ctypes.Array) -> None:  # type: ignore[type-arg]
        """Write len(keys) entries in one call (BPF_MAP_UPDATE_BATCH)."""
        if len(keys) != len(values) or not 0 < len(keys) <= self.max_entries:
            raise ValueError("keys and values must have the same length, between 1 and max_entries")
        try:
            syscall.map_update_batch(self.map_fd, keys, values)
        except OSError as exc:
            raise Exception(f"BPF_MAP_UPDATE_BATCH has failed: {exc.strerror}") from exc


class ArrayTable(Table):
    """An array: int keys (negative from the end), a fixed length, delete writes zeros."""

    def _key(self, key: Any) -> Any:
        if isinstance(key, int):
            key = self.Key(key + self.max_entries if key < 0 else key)
        if not isinstance(key, ctypes._SimpleCData):
            raise IndexError("Array index must be an integer type")
        if not 0 <= key.value < self.max_entries:
            raise IndexError("Array index out of range")
        return key

    def __delitem__(self, key: Any) -> None:
        syscall.map_update(self.map_fd, self._key(key), self.Leaf())

    def __iter__(self) -> Iterator[Any]:
        return (self.Key(index) for index in range(self.max_entries))

    def __len__(self) -> int:
        return self.max_entries


class ProgArrayTable(ArrayTable):
    """A prog array (tail calls): a value is a program fd; deleting a slot empties it."""

    def __setitem__(self, key: Any, leaf: Any) -> None:
        super().__setitem__(key, self.Leaf(leaf) if isinstance(leaf, int) else leaf)

    def __delitem__(self, key: Any) -> None:
        syscall.map_delete(self.map_fd, self._key(key))


def _per_cpu_leaf(leaf: Any) -> Any:
    """The buffer a per-CPU lookup fills: one value per possible CPU, each 8-byte aligned (as bcc has it)."""
    cpus = syscall.possible_cpus()
    if ctypes.sizeof(leaf) % 8 == 0:
        return leaf * cpus
    if leaf is ctypes.c_uint:
        return ctypes.c_uint64 * cpus
    if leaf is ctypes.c_int:
        return ctypes.c_int64 * cpus
    raise IndexError("Leaf must be aligned to 8 bytes")


class _PerCpu:
    """Per-CPU reads: a list with one value per possible CPU (`sLeaf` is the type of one CPU's value)."""

    sLeaf: Any

    def _per_cpu_setup(self) -> None:
        self.sLeaf = self.Leaf  # type: ignore[attr-defined]
        self.Leaf = _per_cpu_leaf(self.sLeaf)

    def _widen(self, result: Any) -> Any:
        if ctypes.sizeof(self.sLeaf) % 8 == 0:
            return result
        values = (self.sLeaf * len(result))()
        for index, value in enumerate(result):
            values[index] = value
        return values

    def sum(self, key: Any) -> Any:
        """The values of all CPUs added (integer leaves only)."""
        return self.sLeaf(sum(self[key]))  # type: ignore[index]


class PerCpuHashTable(_PerCpu, Table):
    """A per-CPU hash (or LRU per-CPU hash)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._per_cpu_setup()

    def __getitem__(self, key: Any) -> Any:
        return self._widen(super().__getitem__(key))


class PerCpuArrayTable(_PerCpu, ArrayTable):
    """A per-CPU array."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._per_cpu_setup()

    def __getitem__(self, key: Any) -> Any:
        return self._widen(super().__getitem__(key))


_CLASSES: dict[int, type[Table]] = {
    BPF_MAP_TYPE_HASH: Table,
    BPF_MAP_TYPE_LRU_HASH: Table,
    BPF_MAP_TYPE_LPM_TRIE: Table,
    BPF_MAP_TYPE_ARRAY: ArrayTable,
    BPF_MAP_TYPE_PROG_ARRAY: ProgArrayTable,
    BPF_MAP_TYPE_PERCPU_HASH: PerCpuHashTable,
    BPF_MAP_TYPE_LRU_PERCPU_HASH: PerCpuHashTable,
    BPF_MAP_TYPE_PERCPU_ARRAY: PerCpuArrayTable,
}


def offered(map_type: int) -> bool:
    """Whether a table is offered for this map type (others are reached by fd only, as sockmaps are)."""
    return map_type in _CLASSES


def table(fd: int, name: str, map_type: int, max_entries: int, key: Any, leaf: Any) -> Table:
    """The table object for a map of one of the offered types."""
    return _CLASSES[map_type](fd, name, map_type, max_entries, key, leaf)
