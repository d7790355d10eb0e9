"""The semantic problems of a topology that failed schema validation: so one run reports every problem.

pydantic stops at the schema: a bad port hides a link to an unknown node. Here the parts pydantic refused
are pruned from a copy of the raw YAML, step by step (a leaf first; its parent when the leaf was required),
until what is left validates; the cross-field checks then run on that, and only their problems that cannot
stem from the pruning (nothing at or under a pruned place, nothing naming a pruned key) are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from edgesim.errors import Problem
from edgesim.model import Topology

# Rounds of pruning before giving up (each round removes every place the last validation refused).
MAX_ROUNDS = 6


def semantic_problems(
    raw: dict[str, Any],
    error: ValidationError,
    check: Callable[[Topology], list[Problem]],
    locate: Callable[[tuple[int | str, ...]], str],
) -> list[Problem]:
    """The cross-field problems of what validates once the refused parts are pruned (see module doc)."""
    pruned_data: Any = copy.deepcopy(raw)
    pruned: list[tuple[Any, ...]] = []
    errors = error.errors()
    for _ in range(MAX_ROUNDS):
        places = {_place(pruned_data, tuple(e["loc"])) for e in errors}
        places.discard(None)
        if not places:
            return []
        # Deepest and last first, so that removing a list item does not shift one still to be removed.
        for place in sorted(places, key=lambda p: (len(p), [str(x) for x in p]), reverse=True):
            _delete(pruned_data, place)
            pruned.append(place)
        try:
            topology = Topology.model_validate(pruned_data)
        except ValidationError as again:
            errors = again.errors()
            continue
        except (RecursionError, TypeError, ValueError):
            return []
        return [p for p in check(topology) if not _touches(p, pruned, locate)]
    return []


def _place(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path in `data` to remove for an error at `loc`: as deep as the data goes, the parent of a missing
    key. Parts of `loc` that are not in the data (a union's tag, `[key]`) are skipped."""
    path: list[Any] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif part == "[key]":
            break  # a bad key: the whole entry goes
        else:
            continue
    if not path:
        return None
    return tuple(path)


def _delete(data: Any, place: tuple[Any, ...]) -> None:
    current = data
    for part in place[:-1]:
        try:
            current = current[part]
        except (KeyError, IndexError, TypeError):
            return
    last = place[-1]
    if isinstance(current, dict):
        current.pop(last, None)
    elif isinstance(current, list) and isinstance(last, int) and 0 <= last < len(current):
        del current[last]


def _touches(problem: Problem, pruned: list[tuple[Any, ...]], locate: Callable[..., str]) -> bool:
    """Whether a problem may be a consequence of the pruning rather than of the user's file."""
    for place in pruned:
        where = locate(place)
        section = where.split(".")[0].split("[")[0]
        if problem.location.startswith(where) or where.startswith(problem.location):
            return True
        if problem.location.split(".")[0].split("[")[0] == section and len(place) <= 2:
            return True  # a whole entry of this section went: counts and references in it are unreliable
        names = [str(part) for part in place if isinstance(part, str)][1:]
        if any(f"'{name}'" in problem.message or f" {name} " in f" {problem.message} " for name in names):
            return True
    return False
