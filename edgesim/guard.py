"""The one check of lab names and the one guard of every removal: nothing outside a lab's own root or prefix.

A lab name becomes a directory (`<state root>/<lab>`), a pin directory and the prefix of every namespace
(`<lab>-`), so a name like `../../etc` would aim `down` at the host. Every entry point (tasks, the Python
API, agents) checks names with `lab_name`; every removal of a tree or a namespace goes through `remove_tree`
or `namespace_name`, which resolve what they are given and refuse anything that is not inside the root or
does not carry the lab's prefix.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from edgesim.errors import EdgesimError, Problem
from edgesim.fields import LAB_NAME_MAX, LAB_NAME_PATTERN, NODE_NAME_MAX, NODE_NAME_PATTERN

LAB_NAME_HINT = f"lowercase letters and digits, starting with a letter, at most {LAB_NAME_MAX} characters"
_LAB_NAME = re.compile(LAB_NAME_PATTERN)
# What a namespace name of a lab may hold: `<lab>-<node>[-<tenant>]` (node names allow '_').
_NAMESPACE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9_-]+$")


def is_lab_name(name: object) -> bool:
    """Whether `name` is a valid lab name (LAB_NAME_PATTERN, at most LAB_NAME_MAX characters)."""
    return isinstance(name, str) and len(name) <= LAB_NAME_MAX and _LAB_NAME.fullmatch(name) is not None


def lab_name(name: object, location: str = "--lab") -> str:
    """`name` if it is a valid lab name, else an EdgesimError saying where it came from."""
    if is_lab_name(name):
        return str(name)
    shown = repr(name) if not isinstance(name, str) or len(name) <= 40 else repr(name[:40] + "…")
    raise EdgesimError(Problem(location, f"{shown} is not a valid lab name", LAB_NAME_HINT))


def lab_argument(text: str) -> str:
    """argparse type of an agent's `--lab`: a valid lab name, else a usage error (never a traceback)."""
    if not is_lab_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid lab name ({LAB_NAME_HINT})")
    return text


def node_argument(text: str) -> str:
    """argparse type of an agent's `--edge`: a valid node name (it becomes part of file names)."""
    if len(text) > NODE_NAME_MAX or re.fullmatch(NODE_NAME_PATTERN, text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid node name")
    return text


def lab_prefix(lab: str) -> str:
    """The prefix every namespace of `lab` starts with (checked: a valid lab name and a hyphen)."""
    return f"{lab_name(lab, 'lab')}-"


def inside(path: Path, root: Path) -> Path:
    """`path` resolved, if it lies strictly inside `root` (resolved too), else an EdgesimError."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise EdgesimError(
            Problem(
                str(path), f"refusing to touch a path outside {base}", "lab files live under their lab's root"
            )
        )
    return resolved


def remove_tree(path: Path, root: Path) -> bool:
    """Remove the tree (or file) at `path` if it lies inside `root`; whether anything went.

    A symbolic link inside the root is removed itself, never what it points at.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise EdgesimError(Problem(str(path), "is not a removable lab path", "name a file or directory"))
    if path.is_symlink():
        inside(path.parent / "x", root)  # the link's own directory must be inside the root
        path.unlink()
        return True
    target = inside(path, root)
    if not target.exists():
        return False
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
    return True


def namespace_name(name: str, prefix: str | None = None) -> str:
    """`name` if it is a lab namespace name starting with `prefix` (`<lab>-…-`, a valid lab first), else an
    EdgesimError."""
    if not isinstance(name, str) or _NAMESPACE.fullmatch(name) is None:
        raise EdgesimError(
            Problem(f"namespace {name!r}", "is not a lab namespace name", "refusing to remove it")
        )
    if prefix is not None and (
        not prefix.endswith("-") or not is_lab_name(prefix.partition("-")[0]) or not name.startswith(prefix)
    ):
        raise EdgesimError(
            Problem(
                f"namespace {name!r}", f"is not inside the lab prefix {prefix!r}", "refusing to remove it"
            )
        )
    return name
