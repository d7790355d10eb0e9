"""The pure parts of capture and the UI relay: targets, bounded tshark command lines, ports per lab."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edgesim.errors import EdgesimError
from edgesim.metrics.capture import MAX_SECONDS, CaptureSpec, argv, parse_target
from edgesim.metrics.planner import UI_PORT_BASE, UI_PORT_SPAN, ui_port
from edgesim.metrics.relay import bind_loopback


def test_targets_name_a_node_and_maybe_an_interface() -> None:
    assert parse_target("edge1") == ("edge1", None)
    assert parse_target("router:eth-edge1") == ("router", "eth-edge1")


def test_tshark_is_bounded_in_packets_and_time_and_writes_pcap() -> None:
    command = argv(CaptureSpec("edge1", count=7, seconds=3, bpf_filter="ip proto 47"), "eth-router")
    assert command[:3] == ["tshark", "-n", "-l"]
    assert ["-c", "7"] == command[command.index("-c") : command.index("-c") + 2]
    assert "duration:3" in command and "ip proto 47" in command and "-w" not in command
    written = argv(CaptureSpec("edge1", write=Path("x.pcap")), "eth-router")
    assert written[written.index("-w") + 1] == str(Path("x.pcap").resolve())
    assert written[written.index("-F") + 1] == "pcap"


@pytest.mark.parametrize(("count", "seconds"), [(0, 1.0), (2_000_000, 1.0), (10, 0.0), (10, MAX_SECONDS + 1)])
def test_unbounded_captures_are_refused(count: int, seconds: float) -> None:
    with pytest.raises(EdgesimError):
        argv(CaptureSpec("edge1", count=count, seconds=seconds), "eth-router")


def test_ui_ports_are_spread_by_lab_and_stable() -> None:
    ports = {ui_port(f"lab{i}") for i in range(50)}
    assert all(UI_PORT_BASE <= p < UI_PORT_BASE + UI_PORT_SPAN for p in ports)
    assert len(ports) > 40
    assert ui_port("pop") == ui_port("pop")


def test_the_relay_takes_the_next_free_loopback_port() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        relay = bind_loopback(port, tries=20)
        try:
            address, chosen = relay.getsockname()
            assert address == "127.0.0.1" and port < chosen < port + 20
        finally:
            relay.close()
    finally:
        taken.close()
