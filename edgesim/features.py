"""The registry of features: one line per feature package, in the order their parts run.

A feature is a package `edgesim/<name>/` whose parts are found by convention, each in its own layer:
`planner` (pure: what it adds to the plan), `hooks` (its life-cycle in `up`/`down` and its status lines),
`tasks` (its invoke collections). The plan, the lab and the task collection each load only the part of
their own layer, as netlab loads its modules' hooks by name; a feature that has no use for a part has no
such module. docs/architecture.md shows how to add one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Order matters: a later planner may build on what an earlier one planned (the XDP agent needs the
# backplane; an edge's services start in this order).
FEATURES: tuple[str, ...] = ("lb", "mitigation", "routing", "proxy", "tenants", "dns", "dispatch", "metrics")


def part(feature: str, kind: str, package: str = "edgesim") -> ModuleType | None:
    """The module `edgesim.<feature>.<kind>`, or None when the feature has no such part."""
    name = f"{package}.{feature}.{kind}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise  # the part exists but something it imports does not: a real error
        return None


def parts(kind: str) -> list[tuple[str, ModuleType]]:
    """Every feature's part of this kind, in registry order."""
    found = [(feature, part(feature, kind)) for feature in FEATURES]
    return [(feature, module) for feature, module in found if module is not None]
