"""What every asyncio service of a lab node does the same way: its stop signal and its listen addresses."""

from __future__ import annotations

import asyncio
import signal


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM (the supervisor stopping the service) or SIGINT; call inside the loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def host_port(listen: str) -> tuple[str, int]:
    """`address:port` → (address, port)."""
    host, port = listen.rsplit(":", 1)
    return host, int(port)
