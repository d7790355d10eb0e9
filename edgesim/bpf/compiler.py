"""The BPF cache's compiler process: compile one translation unit with bcc and write its cache entry.

    python -m edgesim.bpf.compiler --source PATH --digest KEY --out ENTRY -- FLAGS... < translation-unit

Run as a child by edgesim.bpf.cache, so that LLVM lives (and its memory goes) with this short process and
never in an agent. A compile error is printed as JSON problems on stdout, with exit status 3.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from edgesim.bpf import cache, image, loader
from edgesim.errors import EdgesimError, Problem

# linux/prctl.h: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Be killed when the caller dies (a stopped agent leaves no compiler behind); exit if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl: no signal will come
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """Compile stdin's translation unit and store its image; 0 on success, 3 for a compile error."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, type=Path, help="the C file (for messages)")
    parser.add_argument("--digest", required=True, help="the cache key the entry is filed under")
    parser.add_argument("--out", required=True, type=Path, help="the entry file to write")
    parser.add_argument("flags", nargs="*", help="the compiler flags, after --")
    parser.add_argument("--parent", type=int, default=0, help="exit when this process (the caller) dies")
    args = parser.parse_args(argv)
    if args.parent:
        _die_with(args.parent)
    text = sys.stdin.read()
    try:
        program = loader.compile_text(args.source, text, args.flags)
        try:
            recorded = image.record(program)
        except image.ImageError as exc:
            raise EdgesimError(Problem(str(args.source), f"cannot cache this program: {exc}")) from exc
        finally:
            program.cleanup()
    except EdgesimError as exc:
        json.dump([p.__dict__ for p in exc.problems], sys.stdout)
        return cache.COMPILE_FAILED
    cache.write_entry(args.out, args.digest, recorded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
