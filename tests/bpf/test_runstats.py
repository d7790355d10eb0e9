"""BPF run-time statistics (edgesim/bpf/runstats.py): the kernel counts a program's runs while asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import raw

from edgesim.bpf import loader, runstats, testrun
from tests.conftest import require_root

pytestmark = pytest.mark.root


def test_runs_and_their_time_are_counted_while_collecting() -> None:
    require_root()
    program = loader.compile_program(Path("xdp_drop.c"))
    try:
        fd = loader.load_xdp(program, "xdp_drop")
        packet = raw(Ether() / IP(dst="198.51.100.10") / UDP())
        with runstats.collecting():
            before = runstats.read(fd)
            testrun.run(fd, packet, repeat=500)
            moved = runstats.read(fd) - before
        assert moved.runs == 500
        assert 0 < moved.ns_per_run < 100_000
    finally:
        program.cleanup()
