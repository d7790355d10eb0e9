"""Every error case file gives its expected one-line messages, with location and hint, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.errors import EdgesimError
from edgesim.load import load_topology

CASES = sorted((Path(__file__).parent / "errors").glob("*.yml"))


def expected_lines(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ")
        for line in path.read_text().splitlines()
        if line.startswith("# expect: ")
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_case(case: Path) -> None:
    expected = expected_lines(case)
    assert expected, f"{case.name} has no `# expect:` line"
    with pytest.raises(EdgesimError) as caught:
        load_topology(case)
    assert [str(p) for p in caught.value.problems] == expected
    # The printed lines name the file too, and each is one line.
    assert all(line.startswith(f"{case}: ") and "\n" not in line for line in caught.value.lines())


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EdgesimError) as caught:
        load_topology(tmp_path / "nope.yml")
    assert caught.value.lines() == [
        f"{tmp_path / 'nope.yml'}: cannot read the topology file: "
        "No such file or directory (hint: check the path)"
    ]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20
