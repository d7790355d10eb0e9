"""The package's imports go one way: no import cycle, and no module importing a layer above its own.

The imports are read with `ast` (nothing is executed): absolute and relative, `from x import y` where y is a
submodule, and imports inside functions too. Importing `a.b.c` also runs the package `a.b` first, so that
counts as importing it, unless the importer lives inside that package (then it already ran).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import edgesim

PACKAGE_DIR = Path(edgesim.__file__).resolve().parent

# Lowest first. A module belongs to the highest layer one of its patterns matches, so that `edgesim.*.tasks`
# wins over an area's own patterns (e.g. `edgesim.traffic.*`). Feature internals are named one by one on
# purpose: a new module fails the test until someone decides where it belongs.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "base",
        [
            "edgesim",
            "edgesim.errors",
            "edgesim.files",  # atomic writes
            "edgesim.locks",  # flock: one writer per lab, one instance per agent
            "edgesim.waiting",  # wait_until
            # The feature registry: names only; each layer loads the part of its own layer by name.
            "edgesim.features",
            # Packages whose __init__ is a docstring only: importing one of their modules runs nothing more.
            "edgesim.experiments",
            "edgesim.dispatch",
            "edgesim.dns",
            "edgesim.lb",
            "edgesim.metrics",
            "edgesim.mitigation",
            "edgesim.proxy",
            "edgesim.services",
            "edgesim.tenants",
            "edgesim.traffic",
            "edgesim.vagrant",
        ],
    ),
    (
        "model",
        [
            "edgesim.fields",
            "edgesim.guard",  # lab names and the one guard of every removal
            "edgesim.paths",  # the state root and lab directories (names checked by guard)
            "edgesim.nftexpr",  # nftables' JSON form, built (pure); edgesim.nft runs it
            "edgesim.model",
            "edgesim.load",
            "edgesim.salvage",  # the semantic problems of a file that failed the schema
            # Features' topology sections and their pure constants and math.
            "edgesim.proxy.section",
            "edgesim.dns.section",
            "edgesim.dispatch.bindings",
            "edgesim.dispatch.section",
            "edgesim.tenants.section",
            "edgesim.tenants.validate",
            "edgesim.mitigation.rules",
            "edgesim.mitigation.layout",
            "edgesim.mitigation.prefixes",  # source prefixes → exact-match entries per length (pure)
            "edgesim.mitigation.nftrules",  # the L7 rules as nftables JSON (pure)
            "edgesim.tenants.spec",
            "edgesim.tenants.rules",
            "edgesim.lb.layout",
            "edgesim.lb.maglev",
            "edgesim.metrics.families",  # what a metric family is (pure)
        ],
    ),
    (
        "plan",
        [
            "edgesim.plan",
            "edgesim.plan.*",
            "edgesim.*.planner",
            "edgesim.routing.bird",
            "edgesim.metrics.promconfig",  # prometheus.yml from the plan (pure)
            "edgesim.metrics.graph",  # the topology picture as dot and mermaid (pure)
        ],
    ),
    (
        "system",
        [
            "edgesim.namespaces",
            "edgesim.netlink",
            "edgesim.agentsocket",  # the agents' control-socket request
            "edgesim.nft",
            "edgesim.offload",
            "edgesim.probes",
            "edgesim.probes.*",
            "edgesim.bpf.*",
            "edgesim.state",
            "edgesim.runtime",
            "edgesim.backends",
            "edgesim.backends.*",
            "edgesim.supervisor",
            "edgesim.hostsetup",  # host prerequisites: packages, Ansible, a bcc probe
            # Vagrant's docker provider: commands with logs, a private Docker engine, the guest image.
            "edgesim.vagrant.steps",
            "edgesim.vagrant.engine",
            "edgesim.vagrant.image",
            "edgesim.vagrant.box",  # the libvirt box, from the image's rootfs
            "edgesim.vagrant.libvirtd",  # libvirt's daemons started by hand, what they hold
            "edgesim.vagrant.scratch",  # the jobs' scratch trees, and what a crashed job left
        ],
    ),
    (
        "nodes and services",
        [
            "edgesim.nodes",
            "edgesim.nodes.*",
            "edgesim.readiness",
            "edgesim.services.*",
            "edgesim.mitigation.agent",
            "edgesim.tenants.agent",
            "edgesim.metrics.relay",  # a host service: the loopback forward to the lab's Prometheus
            # Metrics: every feature's families (read from the maps its agent owns), the exporter, the client.
            "edgesim.*.metrics",
            "edgesim.metrics.exporter",
            "edgesim.metrics.kernel",
            "edgesim.metrics.client",
            # Feature internals: BPF maps and programs, stores, control APIs, status.
            "edgesim.dispatch.agent",
            "edgesim.dispatch.control",
            "edgesim.dispatch.maps",
            "edgesim.dispatch.sockets",
            "edgesim.dispatch.spectrum",
            "edgesim.dispatch.store",
            "edgesim.dns.control",
            "edgesim.dns.filtermaps",
            "edgesim.dns.server",
            "edgesim.dns.zone",
            "edgesim.lb.balancer",
            "edgesim.lb.control",
            "edgesim.lb.health",
            "edgesim.lb.probe",
            "edgesim.lb.rings",
            "edgesim.lb.maps",
            "edgesim.lb.store",
            "edgesim.lb.table",
            "edgesim.mitigation.control",
            "edgesim.mitigation.l7table",
            "edgesim.mitigation.maps",
            "edgesim.mitigation.store",
            "edgesim.mitigation.synproxy",
            "edgesim.proxy.control",
            "edgesim.proxy.splice",
            "edgesim.routing",  # its __init__ re-exports routing.control
            "edgesim.routing.announcements",
            "edgesim.routing.birdc",
            "edgesim.routing.control",
            "edgesim.routing.kernel",
            "edgesim.routing.status",
            "edgesim.tenants.admin",
            "edgesim.tenants.gre",
            "edgesim.tenants.nft",
            "edgesim.tenants.reconcile",
            "edgesim.tenants.store",
        ],
    ),
    ("feature hooks", ["edgesim.hooks", "edgesim.*.hooks"]),
    (
        "lab",
        [
            "edgesim.lab",
            "edgesim.traffic.*",
            "edgesim.experiments.*",
            "edgesim.metrics.capture",  # tshark in a node
            "edgesim.metrics.live",  # the lab's live state for the picture
            "edgesim.metrics.watch",  # the live dashboard
            "edgesim.vagrant.job",  # the Vagrant CI job
            "edgesim.vagrant.vmjob",  # the VM job (libvirt, TCG)
        ],
    ),
    (
        "tasks",
        [
            "edgesim.tasks",
            "edgesim.*.tasks",
            "edgesim.taskutil",
            "edgesim.spaced",
            "edgesim.cli",
            "edgesim.__main__",
        ],
    ),
]

# Upward imports that exist today and are being removed in files that are not this test's to change. Each
# entry names the file and why it is here; remove it with the import (a stale entry fails the test).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One module depending on another, with where it says so."""

    importer: str
    target: str
    path: str
    line: int
    text: str  # the statement as written
    via: str = ""  # set when the target is a package run first because `via`, inside it, is imported

    def where(self) -> str:
        """`path:line statement`, naming the submodule when the package is only run on the way to it."""
        how = f" (runs the package {self.target} first)" if self.via else ""
        return f"{self.path}:{self.line} `{self.text}`{how}"


Graph = dict[str, list[Import]]


def package_sources(root: Path) -> dict[str, tuple[str, str, bool]]:
    """Every module under the package directory: name → (path shown in messages, source, is a package)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = (str(path.relative_to(root.parent)), path.read_text(), is_package)
    return found


def _resolve_from(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from … import` names (relative imports count from the importer's package)."""
    if node.level == 0:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _named(importer: str, is_package: bool, node: ast.stmt, known: set[str]) -> Iterator[str]:
    """The modules an import statement names (`from a import b` names a.b when that is a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _resolve_from(importer, is_package, node)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in known else base


def import_graph(sources: Mapping[str, tuple[str, str, bool]], root: str = "edgesim") -> Graph:
    """Module → its imports of other modules of the package `root` (outside imports are left out)."""
    known = set(sources)
    graph: Graph = {}
    for importer, (path, source, is_package) in sources.items():
        found: list[Import] = []
        for node in ast.walk(ast.parse(source, filename=path)):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            text = " ".join((ast.get_source_segment(source, node) or "").split())
            for target in _named(importer, is_package, node, known):
                if target != root and not target.startswith(root + "."):
                    continue
                found.append(Import(importer, target, path, node.lineno, text))
                # Python runs each enclosing package of the target first, except those the importer is in.
                parts = target.split(".")
                for n in range(1, len(parts)):
                    package = ".".join(parts[:n])
                    inside = importer == package or importer.startswith(package + ".")
                    if package in known and not inside:
                        found.append(Import(importer, package, path, node.lineno, text, via=target))
        graph[importer] = found
    return graph


def unresolved(graph: Graph) -> list[str]:
    """Imports naming a module the package does not have."""
    return [
        f"{i.where()}: no module {i.target} in the package"
        for imps in graph.values()
        for i in imps
        if i.target not in graph
    ]


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imp in graph.get(module, []):
            if imp.target not in index:
                visit(imp.target)
                low[module] = min(low[module], low[imp.target])
            elif imp.target in on_stack:
                low[module] = min(low[module], index[imp.target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def _one_cycle(graph: Graph, group: set[str]) -> list[Import]:
    """A shortest chain of imports from the group's first module back to itself, inside the group."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imp in graph[module]:
            if imp.target == start:
                return [*paths[module], imp]
            if imp.target in group and imp.target not in paths:
                paths[imp.target] = [*paths[module], imp]
                queue.append(imp.target)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def cycles(graph: Graph) -> list[str]:
    """Each import cycle, as its chain of modules and the lines that make it."""
    found = []
    for members in _strongly_connected(graph):
        group = set(members)
        if len(group) == 1 and not any(i.target in group for i in graph.get(members[0], [])):
            continue
        chain = _one_cycle(graph, group)
        names = " → ".join([chain[0].importer, *(i.target for i in chain)])
        more = (
            f"\n    (one of the cycles among {', '.join(sorted(group))})" if len(group) > len(chain) else ""
        )
        found.append(f"import cycle {names}:\n" + "\n".join(f"    {i.where()}" for i in chain) + more)
    return found


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """The highest layer with a pattern matching the module, or None when none does."""
    matching = [n for n, (_, patterns) in enumerate(layers) if any(fnmatchcase(module, p) for p in patterns)]
    return max(matching) if matching else None


def unplaced(graph: Graph, layers: list[tuple[str, list[str]]]) -> list[str]:
    """Modules no layer pattern matches."""
    return sorted(m for m in graph if layer_of(m, layers) is None)


def upward(
    graph: Graph, layers: list[tuple[str, list[str]]], allowed: Mapping[tuple[str, str], str]
) -> tuple[list[str], set[tuple[str, str]]]:
    """Imports from a lower layer to a higher one that are not allowed, and the allowed ones that occur."""
    found, used = [], set()
    for module, imports in graph.items():
        low = layer_of(module, layers)
        for imp in imports:
            high = layer_of(imp.target, layers)
            if low is None or high is None or high <= low:
                continue
            if (module, imp.target) in allowed:
                used.add((module, imp.target))
                continue
            found.append(
                f"{module} (layer {low} {layers[low][0]}) imports {imp.target} "
                f"(layer {high} {layers[high][0]}): {imp.where()}"
            )
    return found, used


GRAPH = import_graph(package_sources(PACKAGE_DIR))


def test_every_import_names_a_module_of_the_package() -> None:
    problems = unresolved(GRAPH)
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    assert not found, "\n".join(found)


def test_every_module_has_a_layer() -> None:
    missing = unplaced(GRAPH, LAYERS)
    assert not missing, f"place these modules in a layer of LAYERS in {__file__}: {', '.join(missing)}"


def test_imports_go_downwards_only() -> None:
    found, used = upward(GRAPH, LAYERS, ALLOWED_UPWARD)
    assert not found, "imports from a lower layer to a higher one:\n" + "\n".join(found)
    stale = [f"{a} → {b}: {why}" for (a, b), why in ALLOWED_UPWARD.items() if (a, b) not in used]
    assert not stale, "these allowed upward imports are gone; remove them from ALLOWED_UPWARD:\n" + "\n".join(
        stale
    )


# The checker itself, on a made-up package: it must see what it is meant to see.
SYNTHETIC = {
    "pkg": ("pkg/__init__.py", "import pkg.low\n", True),
    "pkg.low": ("pkg/low.py", "import os\n\nfrom pkg.sub import high\n", False),
    "pkg.sub": ("pkg/sub/__init__.py", "from . import high\n", True),
    "pkg.sub.high": ("pkg/sub/high.py", "def late():\n    from pkg import other\n", False),
    "pkg.other": ("pkg/other.py", "from .sub.high import late\n", False),
}
SYNTHETIC_LAYERS = [("low", ["pkg", "pkg.low"]), ("high", ["pkg.sub", "pkg.sub.*", "pkg.other"])]


def test_checker_reads_every_kind_of_import() -> None:
    graph = import_graph(SYNTHETIC, root="pkg")
    targets = {m: sorted({i.target for i in imports}) for m, imports in graph.items()}
    assert targets == {
        "pkg": ["pkg.low"],  # plain `import`
        "pkg.low": ["pkg.sub", "pkg.sub.high"],  # `from pkg.sub import high` runs pkg.sub first
        "pkg.sub": ["pkg.sub.high"],  # relative; the package itself is already running
        "pkg.sub.high": ["pkg.other"],  # inside a function
        "pkg.other": ["pkg.sub", "pkg.sub.high"],  # relative from a plain module
    }
    assert unresolved(graph) == []


def test_checker_reports_a_cycle_with_its_lines() -> None:
    found = cycles(import_graph(SYNTHETIC, root="pkg"))
    assert len(found) == 1
    assert found[0].startswith("import cycle pkg.other → pkg.sub.high → pkg.other:\n")
    assert "pkg/sub/high.py:2 `from pkg import other`" in found[0]


def test_checker_reports_an_upward_import_unless_allowed() -> None:
    graph = import_graph(SYNTHETIC, root="pkg")
    found, used = upward(graph, SYNTHETIC_LAYERS, {})
    assert found == [
        "pkg.low (layer 0 low) imports pkg.sub.high (layer 1 high): pkg/low.py:3 `from pkg.sub import high`",
        "pkg.low (layer 0 low) imports pkg.sub (layer 1 high): pkg/low.py:3 `from pkg.sub import high` "
        "(runs the package pkg.sub first)",
    ]
    assert used == set()
    allowed = {("pkg.low", "pkg.sub.high"): "why", ("pkg.low", "pkg.sub"): "why"}
    assert upward(graph, SYNTHETIC_LAYERS, allowed) == ([], set(allowed))


def test_checker_reports_modules_without_a_layer_and_unknown_modules() -> None:
    graph = import_graph({**SYNTHETIC, "pkg.new": ("pkg/new.py", "from pkg.gone import x\n", False)}, "pkg")
    assert unplaced(graph, SYNTHETIC_LAYERS) == ["pkg.new"]
    assert unresolved(graph) == ["pkg/new.py:1 `from pkg.gone import x`: no module pkg.gone in the package"]


def test_a_module_takes_the_highest_layer_it_matches() -> None:
    names = [name for name, _ in LAYERS]
    assert names[layer_of("edgesim.traffic.tasks", LAYERS) or 0] == "tasks"
    assert names[layer_of("edgesim.traffic.attacks", LAYERS) or 0] == "lab"
    assert layer_of("edgesim.nothing", LAYERS) is None
