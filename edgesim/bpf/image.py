"""A compiled BPF module as data (an image), and loading it without a compiler.

`record` takes what bcc produced (every function's instructions, every map's spec and C types, where the
instructions name a map) into an `Image` that round-trips through JSON. `LoadedImage` creates the image's
maps afresh in the calling process, writes their fds into the instructions and loads the functions: it
offers what the agents use of a `bcc.BPF` (`program[b"map"]`, `load_func`, `cleanup`) and never touches
libbcc or LLVM.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgesim.bpf import maptables, syscall

if TYPE_CHECKING:
    import bcc

# One eBPF instruction: opcode, dst/src registers, offset, immediate (uapi/linux/bpf.h struct bpf_insn).
INSN_SIZE = 8
_LD_IMM64 = 0x18  # BPF_LD | BPF_DW | BPF_IMM: a 64-bit immediate over two instruction slots
_CALL = 0x85  # BPF_JMP | BPF_CALL
# src_reg of an ld_imm64: 1 means the immediate is a map fd (BPF_PSEUDO_MAP_FD); other pseudo kinds (map
# values, BTF ids, functions) need what an image does not carry, so an image with one is refused.
PSEUDO_MAP_FD = 1
# The verifier log asked for when a program is refused (its last lines are the reason).
_LOG_SIZE = 1 << 22
_LOG_LINES = 15
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
FORMAT = 1


class ImageError(ValueError):
    """An image that cannot be recorded or trusted (a cache entry with it is rebuilt)."""


class ProgramLoadError(Exception):
    """The kernel refused a function of an image; `log` is the verifier's output, one line each."""

    def __init__(self, message: str, log: list[str]) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class MapSpec:
    """One map as bcc created it (no BTF): what BPF_MAP_CREATE needs, and its key and leaf C types."""

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    key_desc: Any  # bcc's JSON description of the C type, or None when bcc has none
    leaf_desc: Any


@dataclass(frozen=True)
class Function:
    """One function's instructions, with the map each map-fd load names (instruction index -> map)."""

    insns: bytes
    map_refs: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Image:
    """Everything needed to load a compiled module again: license, kernel version, maps, functions."""

    license: str
    kern_version: int
    maps: tuple[MapSpec, ...]
    functions: dict[str, Function]

    def to_json(self) -> dict[str, Any]:
        """The image as JSON-able data (instructions in base64)."""
        return {
            "format": FORMAT,
            "license": self.license,
            "kern_version": self.kern_version,
            "maps": [spec.__dict__ for spec in self.maps],
            "functions": {
                name: {"insns": base64.b64encode(f.insns).decode(), "map_refs": [list(r) for r in f.map_refs]}
                for name, f in self.functions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Image:
        """An image from to_json's data, checked through (ImageError for anything off)."""
        try:
            if data["format"] != FORMAT:
                raise ImageError(f"format {data['format']!r}, not {FORMAT}")
            maps = tuple(MapSpec(**spec) for spec in data["maps"])
            functions = {
                name: Function(
                    base64.b64decode(f["insns"], validate=True),
                    tuple((int(index), str(target)) for index, target in f["map_refs"]),
                )
                for name, f in data["functions"].items()
            }
            image = cls(str(data["license"]), int(data["kern_version"]), maps, functions)
        except ImageError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ImageError(f"not an image: {exc!r}") from exc
        image.check()
        return image

    def check(self) -> None:
        """Refuse an image whose parts do not fit together (names, sizes, map references)."""
        names = [spec.name for spec in self.maps]
        if len(set(names)) != len(names) or not all(_NAME.match(name) for name in names):
            raise ImageError(f"bad map names {names}")
        for spec in self.maps:
            numbers = (spec.map_type, spec.key_size, spec.value_size, spec.max_entries, spec.flags)
            if not all(isinstance(n, int) and 0 <= n < 1 << 32 for n in numbers):
                raise ImageError(f"map {spec.name}: bad spec {numbers}")
            for desc in (spec.key_desc, spec.leaf_desc):
                try:
                    if desc is not None:
                        maptables.ctype(desc)
                except (ValueError, TypeError, AttributeError, IndexError) as exc:
                    raise ImageError(f"map {spec.name}: bad type description ({exc})") from exc
        if not self.functions or not self.license.isprintable():
            raise ImageError("no functions, or a bad license")
        for name, function in self.functions.items():
            if not _NAME.match(name) or not function.insns or len(function.insns) % INSN_SIZE:
                raise ImageError(f"function {name!r}: bad name or instructions")
            # Every map load must name a map of the image: an fd left as recorded would be another object.
            loads = _pseudo_loads(name, function.insns)
            if sorted(index for index, _ in function.map_refs) != loads:
                raise ImageError(f"function {name}: map references do not match its map loads")
            if any(target not in names for _, target in function.map_refs):
                raise ImageError(f"function {name}: a map reference names no map of the image")


def _pseudo_loads(name: str, insns: bytes) -> list[int]:
    """The indices of a function's map-fd loads; ImageError for the pseudo instructions an image lacks."""
    loads = []
    index, count = 0, len(insns) // INSN_SIZE
    while index < count:
        opcode, src = insns[index * INSN_SIZE], insns[index * INSN_SIZE + 1] >> 4
        if opcode == _LD_IMM64:
            if index + 1 >= count:
                raise ImageError(f"function {name}: a 64-bit load is cut off at instruction {index}")
            if src == PSEUDO_MAP_FD:
                loads.append(index)
            elif src != 0:
                raise ImageError(f"function {name}: instruction {index} is a pseudo load of kind {src}")
            index += 2  # the immediate's upper half is the next slot
            continue
        if opcode == _CALL and src != 0:
            raise ImageError(f"function {name}: instruction {index} calls a BPF function or kfunc")
        index += 1
    return loads


def _map_refs(name: str, insns: bytes, by_fd: dict[int, str]) -> tuple[tuple[int, str], ...]:
    """Where a function's instructions load a map fd, and which of the module's maps it is."""
    refs = []
    for index in _pseudo_loads(name, insns):
        (fd,) = struct.unpack_from("<i", insns, index * INSN_SIZE + 4)
        if fd not in by_fd:
            raise ImageError(f"function {name}: instruction {index} loads fd {fd}, not one of its maps")
        refs.append((index, by_fd[fd]))
    return tuple(refs)


def _desc(raw: bytes | None) -> Any:
    return json.loads(raw.decode()) if raw else None


def record(program: bcc.BPF) -> Image:
    """The image of a module bcc compiled (its maps exist in this process, their fds in the instructions)."""
    from bcc.libbcc import lib

    module = program.module
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    for sized in (lib.bpf_table_key_size_id, lib.bpf_table_leaf_size_id):
        sized.restype = ctypes.c_size_t
        sized.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.bpf_table_fd_id.restype = ctypes.c_int
    lib.bpf_table_fd_id.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    maps, by_fd = [], {}
    for index in range(lib.bpf_num_tables(module)):
        name = lib.bpf_table_name(module, index)
        maps.append(
            MapSpec(
                name=name.decode(),
                map_type=lib.bpf_table_type_id(module, index),
                key_size=lib.bpf_table_key_size_id(module, index),
                value_size=lib.bpf_table_leaf_size_id(module, index),
                max_entries=lib.bpf_table_max_entries_id(module, index),
                flags=lib.bpf_table_flags_id(module, index) & 0xFFFFFFFF,
                key_desc=_desc(lib.bpf_table_key_desc(module, name)),
                leaf_desc=_desc(lib.bpf_table_leaf_desc(module, name)),
            )
        )
        by_fd[lib.bpf_table_fd_id(module, index)] = name.decode()
    functions = {}
    for index in range(lib.bpf_num_functions(module)):
        name = lib.bpf_function_name(module, index)
        insns = program.dump_func(name)
        functions[name.decode()] = Function(insns, _map_refs(name.decode(), insns, by_fd))
    image = Image(
        license=(lib.bpf_module_license(module) or b"GPL").decode(),
        kern_version=lib.bpf_module_kern_version(module),
        maps=tuple(maps),
        functions=functions,
    )
    image.check()
    return image


class LoadedFunction:
    """A loaded function (bcc's BPF.Function has the same `name` and `fd`)."""

    def __init__(self, name: bytes, fd: int) -> None:
        self.name = name
        self.fd = fd


class LoadedImage:
    """An image's maps created in this process, its functions loaded on demand; bcc.BPF's interface."""

    # bcc.BPF's program type constants that the loader passes back to load_func.
    SOCKET_FILTER = 1
    SCHED_CLS = 3
    XDP = 6

    def __init__(self, image: Image) -> None:
        self.image = image
        self.map_fds: dict[str, int] = {}
        self.funcs: dict[bytes, LoadedFunction] = {}
        self.tables: dict[bytes, maptables.Table] = {}
        try:
            for spec in image.maps:
                self.map_fds[spec.name] = syscall.map_create(
                    spec.map_type, spec.key_size, spec.value_size, spec.max_entries, spec.flags, spec.name
                )
        except OSError as exc:
            self.cleanup()
            raise ProgramLoadError(f"cannot create map {spec.name}: {exc.strerror}", []) from exc

    def _linked(self, name: str) -> bytes:
        """The function's instructions with this process's map fds written into its map loads."""
        function = self.image.functions[name]
        insns = bytearray(function.insns)
        for index, target in function.map_refs:
            struct.pack_into("<i", insns, index * INSN_SIZE + 4, self.map_fds[target])
        return bytes(insns)

    def load_func(
        self, func_name: bytes, prog_type: int, device: Any = None, attach_type: int = -1
    ) -> LoadedFunction:
        """Load one function as prog_type (once: a second call returns the first load, as bcc does)."""
        if func_name in self.funcs:
            return self.funcs[func_name]
        name = func_name.decode()
        if name not in self.image.functions:
            raise Exception(f"Unknown program {name}")  # bcc's message
        insns = self._linked(name)
        expected = max(attach_type, 0)
        arguments = (prog_type, insns, self.image.license, name)
        options = {"kern_version": self.image.kern_version, "expected_attach_type": expected}
        fd, _ = syscall.prog_load(*arguments, **options)
        if fd < 0:  # again with the verifier's log, for the error to show why
            fd, log = syscall.prog_load(*arguments, **options, log_size=_LOG_SIZE)
            if fd < 0:
                lines = [line for line in log.splitlines() if line.strip()]
                raise ProgramLoadError(
                    f"Failed to load BPF program {name}: {os.strerror(-fd)}", lines[-_LOG_LINES:]
                )
        loaded = LoadedFunction(func_name, fd)
        self.funcs[func_name] = loaded
        return loaded

    def map_fd(self, name: str) -> int:
        """The fd of one of the maps (for map types without a table, such as sockmaps); KeyError if none."""
        return self.map_fds[name]

    def get_table(self, name: bytes) -> maptables.Table:
        """The table for a map, with key and leaf types from its recorded C types."""
        key = name.decode()
        spec = next((s for s in self.image.maps if s.name == key), None)
        if spec is None:
            raise KeyError(name)
        if not maptables.offered(spec.map_type) or spec.leaf_desc is None or spec.key_desc is None:
            raise KeyError(f"map {key} (type {spec.map_type}) has no table here; use its fd")
        return maptables.table(
            self.map_fds[key],
            key,
            spec.map_type,
            spec.max_entries,
            maptables.ctype(spec.key_desc),
            maptables.ctype(spec.leaf_desc),
        )

    def __getitem__(self, name: bytes) -> maptables.Table:
        if name not in self.tables:
            self.tables[name] = self.get_table(name)
        return self.tables[name]

    def cleanup(self) -> None:
        """Close the programs' and maps' fds (what is attached stays attached until detached)."""
        for function in self.funcs.values():
            os.close(function.fd)
        for fd in self.map_fds.values():
            os.close(fd)
        self.funcs.clear()
        self.map_fds.clear()
        self.tables.clear()
