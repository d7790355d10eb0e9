"""When a flood is resumed: after trafgen gave up on a full transmit ring, never after another failure."""

from __future__ import annotations

from pathlib import Path

from edgesim.traffic import attacks

FULL_RING = "trafgen 0.6.8\nFlushing TX_RING failed: Resource temporarily unavailable!"


def test_a_full_transmit_ring_is_resumed() -> None:
    assert attacks._ring_was_full(1, FULL_RING)


def test_other_failures_are_not_resumed() -> None:
    assert not attacks._ring_was_full(1, "Cannot open device attacker-eth0: No such device")
    assert not attacks._ring_was_full(1, "Flushing TX_RING failed: Network is down!")
    assert not attacks._ring_was_full(-9, FULL_RING)  # killed: not trafgen's own verdict


def test_a_resumed_flood_sends_only_what_is_left() -> None:
    argv = attacks._argv("eth0", Path("/x.cfg"), 1234, 0)
    assert argv[argv.index("--num") + 1] == "1234"
    assert "--rate" not in argv
    limited = attacks._argv("eth0", Path("/x.cfg"), 10, 500)
    assert limited[-2:] == ["--rate", "500pps"]
