"""Compile once, load many: BPF images cached by what determines the compiler's output.

An entry is `<root>/<digest>/image.json`, the digest being the sha256 of the translation unit, the compiler
flags (params included), the kernel release and the bcc version. The first process to need an entry builds
it under `<root>/<digest>.lock` in a child process (`python -m edgesim.bpf.compiler`), so that the caller
never maps LLVM and concurrent edges compile once; every process then creates its own maps from the image.
An entry is written in one rename and checked through (its own sha256, then every part) before it is used:
one that does not check out is rebuilt, never trusted.

EDGESIM_BPF_CACHE=off compiles in-process with bcc as before; EDGESIM_BPF_CACHE_DIR moves the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesim import locks
from edgesim.bpf.image import Image, ImageError, LoadedImage
from edgesim.errors import EdgesimError, Problem
from edgesim.files import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/var/lib/edgesim/bpf-cache")
ENTRY_FILE = "image.json"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# A compile takes seconds here, but in the VM suite's TCG guest a lab's programs, compiled at once, took
# over 10 minutes and the waiters gave up (the proxies then copied instead of splicing). The lock goes with
# its holder's death, so a long wait only ever waits for a live compiler.
_LOCK_WAIT_S = 1800.0
# What the compiler child's exit code 3 means: it wrote EdgesimError problems as JSON on stdout.
COMPILE_FAILED = 3


def enabled() -> bool:
    """Whether programs come from the cache (the default) or are compiled in-process every time."""
    return os.environ.get("EDGESIM_BPF_CACHE", "on").strip().lower() not in ("off", "0", "no", "false")


def root() -> Path:
    """The cache directory (EDGESIM_BPF_CACHE_DIR, else /var/lib/edgesim/bpf-cache)."""
    return Path(os.environ.get("EDGESIM_BPF_CACHE_DIR") or DEFAULT_ROOT)


def _bcc_version() -> str:
    """bcc's version, read from its package without importing it (the import would load libbcc)."""
    spec = importlib.util.find_spec("bcc")
    if spec is None or not spec.origin:
        return "none"
    try:
        return (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return "unknown"


def digest(translation_unit: str, flags: Sequence[str]) -> str:
    """The cache key of a compile: sha256 over the exact text, the flags, the kernel and bcc."""
    inputs = {
        "format": 1,
        "text": translation_unit,
        "flags": list(flags),
        "kernel": os.uname().release,
        "bcc": _bcc_version(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _payload_sum(image: Any) -> str:
    return hashlib.sha256(json.dumps(image, sort_keys=True).encode()).hexdigest()


def entry_text(key: str, image: Image) -> str:
    """What an entry file holds: the digest it is filed under, the image, and the image's own sha256."""
    data = image.to_json()
    return json.dumps({"digest": key, "sha256": _payload_sum(data), "image": data}) + "\n"


def read_entry(path: Path, key: str) -> Image | None:
    """The image an entry holds, or None when there is none or it does not check out (then it is rebuilt)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("BPF cache entry %s is unreadable (%s); rebuilding it", path, exc)
        return None
    try:
        if not isinstance(data, dict) or data.get("digest") != key:
            raise ImageError("filed under another digest")
        if data.get("sha256") != _payload_sum(data.get("image")):
            raise ImageError("its content does not match its sha256")
        return Image.from_json(data["image"])
    except ImageError as exc:
        log.warning("BPF cache entry %s is not valid (%s); rebuilding it", path, exc)
        return None


def _build(source: Path, text: str, flags: Sequence[str], entry: Path, key: str) -> None:
    """Compile in a child process that writes the entry; its compile errors come back as ours."""
    command = [sys.executable, "-m", "edgesim.bpf.compiler", "--source", str(source), "--out", str(entry)]
    command += ["--digest", key, "--parent", str(os.getpid()), "--", *flags]
    done = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
    if done.returncode == COMPILE_FAILED:
        try:
            problems = [Problem(**p) for p in json.loads(done.stdout)]
        except (ValueError, TypeError):
            problems = [Problem(str(source), "the BPF compiler failed", done.stderr.decode(errors="replace"))]
        raise EdgesimError(problems)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()[-10:]
        raise EdgesimError(
            [
                Problem(str(source), f"the BPF compiler exited with status {done.returncode}"),
                *(Problem("compiler", line) for line in lines),
            ]
        )


def image_for(source: Path, text: str, flags: Sequence[str]) -> Image:
    """The image of a compile, from the cache or built (once, whoever asks concurrently) into it."""
    key = digest(text, flags)
    directory = root()
    entry = directory / key / ENTRY_FILE
    image = read_entry(entry, key)
    if image is not None:
        return image
    try:
        with locks.hold(directory / f"{key}.lock", wait_s=_LOCK_WAIT_S):
            image = read_entry(entry, key)  # built by the holder we waited for
            if image is None:
                _build(source, text, flags, entry, key)
                image = read_entry(entry, key)
                log.info("%s: compiled into the BPF cache as %s", source, key)
    except locks.Busy as exc:
        raise EdgesimError(
            Problem(str(source), f"the BPF cache entry is being built by {exc.holder} for too long")
        ) from exc
    if image is None:
        raise EdgesimError(Problem(str(entry), "the BPF compiler wrote no valid cache entry"))
    return image


def load(source: Path, text: str, flags: Sequence[str]) -> LoadedImage:
    """The program compiled from `text` with `flags`, its maps fresh in this process."""
    return LoadedImage(image_for(source, text, flags))


def write_entry(entry: Path, key: str, image: Image) -> None:
    """Store an image as the entry for `key` in one rename (a reader sees all of it or none)."""
    atomic_write_text(entry, entry_text(key, image))


def entries(directory: Path | None = None) -> list[str]:
    """The digests the cache holds entries (or locks) for."""
    base = directory or root()
    if not base.is_dir():
        return []
    names = {path.name.removesuffix(".lock") for path in base.iterdir()}
    return sorted(name for name in names if _DIGEST.match(name))


def clear(directory: Path | None = None) -> list[str]:
    """Remove the cache's entries and locks (only names that are digests; nothing else); what went."""
    base = directory or root()
    removed = entries(base)
    for name in removed:
        folder, lock = base / name, base / f"{name}.lock"
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
        elif folder.is_symlink():
            folder.unlink()
        if lock.is_file() and not lock.is_symlink():
            lock.unlink()
    with_rest = list(base.iterdir()) if base.is_dir() else [None]
    if not with_rest:
        base.rmdir()
    return removed
