"""The spaced form of a collection's tasks for invoke (`invoke edge down edge1`, `invoke lb status`).

`edgesim` joins spaced words into invoke's dotted names itself (cli.dotted); `invoke` does not, so each
collection with a spaced form has a default task that takes the task's name as a word and calls this.
"""

from __future__ import annotations

import inspect

from invoke import Context, Task

from edgesim.errors import EdgesimError, Problem


def run_named(area: str, tasks: dict[str, Task], name: str, c: Context, **given: object) -> None:
    """Run `tasks[name]` with those of `given` it takes; say which argument it needs when one is missing."""
    if name not in tasks:
        raise EdgesimError(Problem(f"task {name}", "does not exist here", f"one of: {', '.join(tasks)}"))
    task = tasks[name]
    params = list(inspect.signature(task.body).parameters.values())[1:]  # after the Context
    kwargs = {p.name: given.get(p.name) for p in params if p.name in given}
    for p in params:
        if p.default is inspect.Parameter.empty and kwargs.get(p.name) is None:
            raise EdgesimError(
                Problem(
                    p.name.upper(),
                    f"`{area} {name}` needs an {p.name}",
                    f"e.g. `invoke {area} {name} {p.name}1`",
                )
            )
    task(c, **kwargs)
