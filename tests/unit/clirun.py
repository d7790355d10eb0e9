"""Running the `edgesim` program in-process, as its console script does, and collecting what it printed."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from invoke import Collection, Task

from edgesim.cli import dotted, help_first, program
from edgesim.tasks import ns


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one run."""

    code: int
    stdout: str
    stderr: str


def _tasks(collection: Collection) -> list[Task]:
    return [*collection.tasks.values(), *(t for sub in collection.collections.values() for t in _tasks(sub))]


def run_cli(argv: list[str]) -> CliResult:
    """`edgesim ARGV…` in this process; any exception other than the program's own exit propagates."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    # invoke pops each option's help text the first time it builds a task's arguments: keep it for the
    # next run (and for test_tasks_help) in this process.
    helps = {id(task): dict(task.help) for task in _tasks(ns)}
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            program.run(["edgesim", *help_first(dotted(list(argv), ns))], exit=True)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            for task in _tasks(ns):
                task.help = dict(helps[id(task)])
    return CliResult(code, stdout.getvalue(), stderr.getvalue())
