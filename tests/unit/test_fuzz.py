"""Fuzzing (hypothesis): hostile topology files and argument vectors never give a traceback.

Topology files: the shipped topologies with values replaced by other values and types, keys removed and
added, random text and random bytes; loading (and planning) gives a Topology/LabPlan or an EdgesimError of
one-line problems, each naming the file and a location. Argument vectors: every task of the `edgesim`
program with random words, its own options and hostile values, run in-process as the console script runs
them, as a user without root (so no task acts on the machine: a task needing root refuses first, and the
state root is a temporary directory); the program exits with its own code and never lets an exception out.

Bounded: a few hundred cases each, well under a minute in all (FUZZ_EXAMPLES overrides the count).
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesim import lab, paths
from edgesim.errors import EdgesimError
from edgesim.lab import REPO_ROOT
from edgesim.tasks import ns
from edgesim.tenants.rules import RuleError, parse_rule
from tests.unit.clirun import _tasks, run_cli

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOPOLOGIES = sorted((REPO_ROOT / "topology").glob("*.yml"))
SEEDS = [yaml.safe_load(path.read_text()) for path in TOPOLOGIES]

# Values of every kind a YAML file can hold, and some that mean something here.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "198.51.100.10",
            "198.51.100.0/24",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "203.0.113.0/25",
            "edge1",
            "router",
            "edge",
            "host",
            "customer",
            "tenant",
            "bgp",
            "static",
            "ebpf",
            "kernel",
            "../../etc",
            "a" * 40,
            "tcp dport { 80 } accept }",
            "accept",
            "drop",
            "-1",
            "65536",
            "1e309",
            "",
            " ",
            "\t",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), SCALARS), inner, max_size=4),
    ),
    max_leaves=8,
)


def paths_in(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a nested structure (dict keys and list indices), the root excluded."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found += paths_in(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found += paths_in(value, (*prefix, index))
    return found


@st.composite
def mutated_topologies(draw: st.DrawFn) -> Any:
    """A shipped topology with a few places replaced, removed or added to."""
    data = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = paths_in(data)
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent = data
        for part in place[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[place[-1]] = draw(VALUES)
        elif action == "remove":
            del parent[place[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return data


def check_file(path: Path, lab_name: str | None = None) -> None:
    """Load and plan `path`: a plan, or an EdgesimError whose every line names the file and a location."""
    try:
        lab.load_plan(path, lab_name)
    except EdgesimError as err:
        lines = err.lines()
        assert lines, "an error with no problem in it"
        for line in lines:
            assert "\n" not in line, line
            assert line.startswith(f"{path}: "), line
            assert line.removeprefix(f"{path}: ").split(": ", 1)[0], f"no location: {line}"


def write(data: bytes) -> Path:
    handle, name = tempfile.mkstemp(suffix=".yml", prefix="fuzz-")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return Path(name)


def fuzz_file(data: bytes, lab_name: str | None = None) -> None:
    path = write(data)
    try:
        check_file(path, lab_name)
    finally:
        path.unlink()


@FUZZ
@given(mutated_topologies())
def test_mutated_topologies_never_give_a_traceback(data: Any) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    fuzz_file(text.encode())


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_never_give_a_traceback(data: bytes) -> None:
    fuzz_file(data)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("lab:vipsnodes{}[]-,&*!|>'\"#%@` \n\t01.x")), max_size=200))
def test_yaml_like_text_never_gives_a_traceback(text: str) -> None:
    fuzz_file(text.encode())


@FUZZ
@given(st.sampled_from(TOPOLOGIES), st.one_of(st.none(), st.text(max_size=20)))
def test_any_lab_name_override_is_checked(path: Path, name: str | None) -> None:
    check_file(path, name)


# --- argument vectors -------------------------------------------------------------------------------

EXCLUDED_TASKS = {"test", "lint"}  # they run pytest and ruff: processes, not input handling
EXCLUDED_FLAGS = {"--output", "-o"}  # schema --output writes wherever it is told


def task_words() -> dict[str, list[str]]:
    """Each task's name and the flags it takes (invoke's own spelling of them)."""
    words = {}
    for name, task in _all(ns).items():
        if name.split(".")[0] in EXCLUDED_TASKS:
            continue
        helps = dict(task.help)
        try:
            flags = [f for arg in task.get_arguments() for f in _flags(arg.names)]
        finally:
            task.help = helps
        words[name] = [f for f in flags if f not in EXCLUDED_FLAGS]
    return words


def _all(collection: Any, prefix: str = "") -> dict[str, Any]:
    found = {f"{prefix}{name}": task for name, task in collection.tasks.items()}
    for name, sub in collection.collections.items():
        found.update(_all(sub, f"{prefix}{name}."))
    return found


def _flags(names: tuple[str, ...]) -> list[str]:
    return [f"--{n.replace('_', '-')}" if len(n) > 1 else f"-{n}" for n in names]


TASK_WORDS = task_words()
HOSTILE = st.sampled_from(
    [
        "0",
        "-1",
        "-5",
        "1e999",
        "nan",
        "inf",
        "-inf",
        "abc",
        "",
        "../../etc",
        "/etc",
        "a" * 13,
        "8.8.8.8",
        "198.51.100.10",
        "203.0.113.100",
        "edge1",
        "acme",
        "syn-flood",
        "drop_src",
        "100.64.0.0/10",
        "x" * 500,
        "tcp dport { 80 } accept }",
        "\x00",
        "é",
        "99999999999999999999999",
        "--",
        "-h",
        "--help",
        "pop",
        "topology/default.yml",
        "/dev/null",
        "/dev/zero",
        "/proc/self/mem",
        "/",
        "-",
    ]
)


@st.composite
def argument_vectors(draw: st.DrawFn) -> list[str]:
    """A task name (dotted or spaced), then a mix of its own flags and hostile or random values."""
    name = draw(st.sampled_from(sorted(TASK_WORDS)))
    head = name.split(".") if draw(st.booleans()) else [name]
    flags = TASK_WORDS[name] or ["--help"]
    word = st.one_of(
        st.sampled_from(flags), HOSTILE, st.text(max_size=12).filter(lambda w: not w.startswith("-"))
    )
    return [*head, *draw(st.lists(word, max_size=6))]


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@FUZZ
@given(argv=argument_vectors())
def test_random_argument_vectors_never_give_a_traceback(argv: list[str], state_root: Path) -> None:
    # As a user without root, under an empty temporary state root: no task acts on this machine.
    with mock.patch("os.geteuid", return_value=1000), mock.patch.object(paths, "STATE_ROOT", state_root):
        result = run_cli(argv)
    assert isinstance(result.code, int)
    assert "Traceback" not in result.stderr + result.stdout, (argv, result.stderr)
    if result.code not in (0,):
        assert result.stderr.strip() or result.stdout.strip(), f"{argv}: failed without saying why"


def test_the_fuzzed_tasks_are_all_of_them() -> None:
    assert {"up", "down", "status", "attack", "load", "tenant.rule.add", "mitigate.add"} <= set(TASK_WORDS)
    assert len(TASK_WORDS) == len(_tasks(ns)) - len(EXCLUDED_TASKS)


# --- tenant firewall rules (from tasks and from topology files) ----------------------------------------

RULE_WORDS = st.sampled_from(
    [
        "ip",
        "saddr",
        "daddr",
        "protocol",
        "tcp",
        "udp",
        "icmp",
        "sport",
        "dport",
        "accept",
        "drop",
        "{",
        "}",
        ",",
        "80",
        "20-21",
        "80,443",
        "0",
        "65536",
        "5-1",
        "203.0.113.100",
        "203.0.113.0/25",
        "1.2.3.4/33",
        "x",
    ]
)


@FUZZ
@given(st.one_of(st.lists(RULE_WORDS, max_size=10).map(" ".join), st.text(max_size=40)))
def test_rule_text_is_a_rule_or_a_rule_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleError as err:
        assert "\n" not in str(err)
        return
    assert parse_rule(rule.text()) == rule, "the canonical spelling parses to the same rule"


MITIGATION_FIELDS = [
    "kind",
    "name",
    "prefix",
    "proto",
    "src_port",
    "dst_port",
    "match",
    "rate",
    "burst",
    "vip",
]


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([*MITIGATION_FIELDS, "port", "ip_options", "fragments"]),
        st.one_of(SCALARS, st.sampled_from(["drop_src", "drop_port", "rate_limit", "syn_cookie", "vip_cap"])),
        max_size=6,
    )
)
def test_mitigation_rule_options_are_a_rule_or_one_line_errors(fields: dict[str, Any]) -> None:
    from edgesim.mitigation import control

    try:
        control.parse_rule(fields)
    except EdgesimError as err:
        assert all("\n" not in line for line in err.lines())
