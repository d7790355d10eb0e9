"""The `edgesim` console script: the same task collection as `invoke`, usable from any directory.

It also accepts sub-collection tasks with a space (`edgesim mitigate add …`) as well as invoke's dotted
form (`invoke mitigate.add …`).
"""

from __future__ import annotations

import sys

from invoke import Collection, ParseError, Program
from invoke.exceptions import UnknownFileType

from edgesim import __version__
from edgesim.errors import one_line
from edgesim.tasks import ns


class EdgesimProgram(Program):
    """invoke's Program, with a bad option value (`--pps many`) a one-line error instead of a traceback."""

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        """Run the program; a config file invoke cannot read (`-f FILE`) is a one-line error."""
        try:
            super().run(argv, exit)
        except UnknownFileType as err:
            print(f"error: {one_line(str(err))}", file=sys.stderr)
            sys.exit(1)

    def parse_tasks(self) -> None:
        """Parse the tasks and their options; invoke lets the int()/float() cast's ValueError escape."""
        try:
            super().parse_tasks()
        except ValueError as err:
            raise ParseError(f"error: {_cast_error(err)}") from None


def _cast_error(err: ValueError) -> str:
    """`'two' is not a whole number` from int()'s or float()'s own words."""
    text = str(err)
    value = text.rpartition(": ")[2]
    if text.startswith("invalid literal for int()"):
        return f"option value {value} is not a whole number (hint: e.g. 100)"
    if text.startswith("could not convert string to float"):
        return f"option value {value} is not a number (hint: e.g. 1.5)"
    return f"bad option value: {text}"


program = EdgesimProgram(namespace=ns, name="edgesim", binary="edgesim", version=__version__)


def dotted(argv: list[str], collection: Collection) -> list[str]:
    """Join `AREA [SUB…] TASK` into invoke's `AREA.SUB.TASK` where each word names a (sub-)collection."""
    result: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return result + argv[index:]
        joined = _task_path(argv[index:], collection)
        if joined is not None:
            result.append(".".join(joined))
            index += len(joined)
            continue
        result.append(word)
        index += 1
    return result


def _task_path(words: list[str], collection: Collection) -> list[str] | None:
    """The words naming a task inside nested collections (`tenant rule add`), or None."""
    current = collection
    for depth, word in enumerate(words):
        if depth > 0 and word in current.task_names:
            return words[: depth + 1]
        sub = current.collections.get(word)
        if sub is None:
            return None
        current = sub
    return None


def help_first(argv: list[str]) -> list[str]:
    """`TASK … --help` → `--help TASK`: invoke would take --help as the value of a positional argument."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    flags = [w for w in words if w in ("-h", "--help")]
    tasks = [w for w in words if not w.startswith("-")]
    return ["--help", tasks[0]] if flags and tasks else argv


def main() -> None:
    """Run the edgesim program (`edgesim up`, `edgesim mitigate add …`, `edgesim --list`)."""
    program.run([sys.argv[0], *help_first(dotted(sys.argv[1:], ns))])
