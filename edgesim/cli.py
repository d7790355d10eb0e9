"""The `edgesim` console script: the same task collection as `invoke`, usable from any directory.

It also accepts sub-collection tasks with a space (`edgesim mitigate add …`) as well as invoke's dotted
form (`invoke mitigate.add …`).
"""

from __future__ import annotations

import sys

from invoke import Collection, Program

from edgesim import __version__
from edgesim.tasks import ns

program = Program(namespace=ns, name="edgesim", binary="edgesim", version=__version__)


def dotted(argv: list[str], collection: Collection) -> list[str]:
    """Join `AREA TASK` into invoke's `AREA.TASK` where AREA is a sub-collection and TASK one of its tasks."""
    result: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return result + argv[index:]
        sub = collection.collections.get(word)
        if sub is not None and index + 1 < len(argv) and argv[index + 1] in sub.task_names:
            result.append(f"{word}.{argv[index + 1]}")
            index += 2
            continue
        result.append(word)
        index += 1
    return result


def help_first(argv: list[str]) -> list[str]:
    """`TASK … --help` → `--help TASK`: invoke would take --help as the value of a positional argument."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    flags = [w for w in words if w in ("-h", "--help")]
    tasks = [w for w in words if not w.startswith("-")]
    return ["--help", tasks[0]] if flags and tasks else argv


def main() -> None:
    """Run the edgesim program (`edgesim up`, `edgesim mitigate add …`, `edgesim --list`)."""
    program.run([sys.argv[0], *help_first(dotted(sys.argv[1:], ns))])
