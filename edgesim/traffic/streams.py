"""Run an HTTP stream (edgesim.traffic.http_stream) in a lab node from the host: started, then its report."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from edgesim import namespaces
from edgesim.traffic.http_stream import STARTED_LINE, StreamReport, parse

START_TIMEOUT_S = 60.0  # a cold Python start on a loaded 2-core machine, with margin
STOP_TIMEOUT_S = 30.0


def start(
    netns: str, target: str, rate: float, timeout: float = 0.8, protocol: str = "http"
) -> subprocess.Popen[str]:
    """Start the stream in `netns` and return once its first request is on its way."""
    argv = [sys.executable, "-m", "edgesim.traffic.http_stream", "--target", target, "--rate", str(rate)]
    argv += ["--timeout", str(timeout), "--protocol", protocol]
    proc: subprocess.Popen[str] = namespaces.popen_in(
        netns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = _first_line(proc)
    if line != STARTED_LINE:
        proc.kill()
        _, rest = proc.communicate()
        raise RuntimeError(
            f"the stream to {target} did not start within {START_TIMEOUT_S:.0f} s: {line}{rest[-400:]}"
        )
    return proc


def _first_line(proc: subprocess.Popen[str]) -> str:
    # Byte by byte from the pipe itself: a buffered readline could swallow what communicate() must see.
    assert proc.stderr is not None
    fd, line = proc.stderr.fileno(), b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 1) if ready else b""
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").strip()


def finish(proc: subprocess.Popen[str]) -> StreamReport:
    """Stop the stream (SIGTERM: requests in flight finish) and return its report."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"the stream failed (exit {proc.returncode}): {err[-400:]}")
    return parse(out)


@contextmanager
def running(
    netns: str, target: str, rate: float, timeout: float = 0.8, protocol: str = "http"
) -> Iterator[list[StreamReport]]:
    """The stream for the block; the list holds its report afterwards (also when the block failed)."""
    result: list[StreamReport] = []
    proc = start(netns, target, rate, timeout, protocol)
    try:
        yield result
    finally:
        result.append(finish(proc))
