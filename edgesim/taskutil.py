"""Shared pieces of the task modules: consoles, user-error handling, the root check."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from invoke import Exit
from rich.console import Console
from rich.text import Text

from edgesim import guard
from edgesim.errors import EdgesimError

console = Console(stderr=True)
# Tables need more than the 80 columns rich assumes when output is not a terminal (CI logs, pipes).
out = Console(width=None if sys.stdout.isatty() else 140)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn EdgesimError into red lines and exit 1, never a traceback; Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # Every task's --lab is checked before the task does anything (it names directories).
            if kwargs.get("lab") is not None:
                guard.lab_name(kwargs["lab"])
            return func(*args, **kwargs)
        except EdgesimError as err:
            for line in err.lines():
                # Text, not markup: a hint like `[router, client1]` is the user's to read, not a style tag.
                console.print(Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True)
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise Exit(code=130) from None

    return wrapper


def need_root(what: str) -> None:
    """Refuse, with a hint, when not running as root."""
    if os.geteuid() != 0:
        raise EdgesimError(f"`{what}` needs root (network namespaces, packages)", hint=f"sudo edgesim {what}")
