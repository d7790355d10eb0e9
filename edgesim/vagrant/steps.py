"""Running the job's external commands: progress on the console, a full log, a one-line error on failure."""

from __future__ import annotations

import os
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console

from edgesim.errors import EdgesimError, Problem

_TAIL_LINES = 30
_QUIET_PROGRESS_S = 20.0


def run_logged(
    console: Console,
    what: str,
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    echo: bool = True,
    timeout: float = 3600,
) -> str:
    """Run argv, appending its output to log and (echo) to the console line by line; return the output."""
    started = shown = time.monotonic()
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    lines: list[str] = []
    full_env = {**os.environ, **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
            )
        except OSError as exc:
            raise EdgesimError(Problem(what, f"cannot run {argv[0]}: {exc}")) from exc
        assert proc.stdout is not None  # stdout=PIPE
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            out.write(line + "\n")
            out.flush()
            tail.append(line)
            lines.append(line)
            if not echo and time.monotonic() - shown >= _QUIET_PROGRESS_S:
                # Quiet steps still show they are alive, with their latest line.
                shown = time.monotonic()
                console.print(
                    f"  {shown - started:5.0f}s {what}: {line[:100]}", highlight=False, markup=False
                )
            if echo:
                console.print(
                    f"  {time.monotonic() - started:5.0f}s {line}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
            if time.monotonic() - started > timeout:
                proc.kill()
        returncode = proc.wait()
    if returncode != 0:
        if not echo:
            for line in tail:
                console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        raise EdgesimError(Problem(what, f"{argv[0]} failed (exit status {returncode})", f"full log: {log}"))
    return "\n".join(lines)


def capture(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a short query command and return its result (a missing command is exit status 127)."""
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            timeout=300,
        )
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))
