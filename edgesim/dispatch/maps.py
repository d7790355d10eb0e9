"""The dispatcher's maps from Python: the bindings trie kept equal to the table, and the counters read.

`label_counters` and `totals` are plain functions over the loaded program, for status, tasks and metrics.
"""

from __future__ import annotations

import ctypes
import socket
from typing import TYPE_CHECKING, Any

from edgesim.dispatch.bindings import PROTOCOL_NUMBERS, BindingTable

if TYPE_CHECKING:
    import bcc

# The fixed part of a binding's key (protocol, padding, port: DISPATCH_KEY_FIXED_BITS).
KEY_FIXED_BITS = 32
# dispatch_totals' slots (DISPATCH_* in dispatch_consts.h).
TOTALS = ("no_binding", "assigned")
STATS = ("lookups", "misses", "drops")


def _wanted(bpf: bcc.BPF, table: BindingTable) -> dict[tuple[int, int, int, int], tuple[int, int]]:
    """The trie's contents for the table: (prefixlen, protocol, port, addr) -> (label id, prefix length)."""
    wanted = {}
    for binding in table.bindings:
        label = table.label_id(binding.label)
        if label is None:
            continue
        addr = int.from_bytes(binding.prefix.network_address.packed, "little")  # network order in memory
        port = socket.htons(binding.port or 0)
        key = (KEY_FIXED_BITS + binding.prefix.prefixlen, PROTOCOL_NUMBERS[binding.protocol], port, addr)
        wanted[key] = (label, binding.prefix.prefixlen)
    return wanted


def sync_bindings(bpf: bcc.BPF, table: BindingTable) -> int:
    """Make the bindings trie hold exactly the table's bindings; how many entries changed."""
    trie = bpf[b"bindings"]
    wanted = _wanted(bpf, table)
    present = {(k.prefixlen, k.protocol, k.port, k.addr): (v.label, v.prefix_len) for k, v in trie.items()}
    changes = 0
    for key in present.keys() - wanted.keys():
        del trie[trie.Key(prefixlen=key[0], protocol=key[1], pad=0, port=key[2], addr=key[3])]
        changes += 1
    for key, value in wanted.items():
        if present.get(key) != value:
            trie_key = trie.Key(prefixlen=key[0], protocol=key[1], pad=0, port=key[2], addr=key[3])
            trie[trie_key] = trie.Leaf(label=value[0], prefix_len=value[1])
            changes += 1
    return changes


def label_counters(bpf: bcc.BPF, table: BindingTable) -> dict[str, dict[str, int]]:
    """Per label: lookups that matched its bindings, misses (no socket), drops; summed over the CPUs."""
    stats = bpf[b"label_stats"]
    counters = {}
    for label, index in table.labels.items():
        per_cpu = stats[ctypes.c_int(index)]
        counters[label] = {name: sum(getattr(cpu, name) for cpu in per_cpu) for name in STATS}
    return counters


def totals(bpf: bcc.BPF) -> dict[str, Any]:
    """Lookups no binding matched (left to the kernel), and connections handed to a registered socket."""
    table = bpf[b"dispatch_totals"]
    return {name: sum(int(v) for v in table[ctypes.c_int(slot)]) for slot, name in enumerate(TOTALS)}
