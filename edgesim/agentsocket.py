"""One request to an agent's control socket: a JSON line out, a JSON line back (the shared protocol)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from edgesim.errors import EdgesimError


def request(path: Path, who: str, hint: str, op: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
    """Send `op` (with `fields`) to the agent `who` at `path`; its answer, or EdgesimError when it cannot."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            answer = json.loads(sock.makefile().readline())
    except (OSError, ValueError) as err:
        raise EdgesimError(f"{who} at {path} did not answer: {err}", hint=hint) from None
    if not answer.get("ok"):
        raise EdgesimError(f"{who} at {path}: {answer.get('error')}")
    return answer
