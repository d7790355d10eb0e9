"""The lab's bindings table on disk (`dispatch.json` in the state directory): written by `up` and by the
tasks, read by every edge's dispatch agent on reload."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from edgesim.dispatch.bindings import BindingTable
from edgesim.errors import EdgesimError
from edgesim.files import atomic_write_text


def read(path: Path) -> BindingTable:
    """The table in the file (an empty one when there is no file)."""
    if not path.exists():
        return BindingTable()
    try:
        return BindingTable.model_validate_json(path.read_text())
    except ValidationError as err:
        raise EdgesimError(f"{path}: not a bindings table: {err.errors()[0]['msg']}") from None


def write(path: Path, table: BindingTable) -> None:
    """Replace the file with `table`."""
    atomic_write_text(path, table.model_dump_json(indent=2) + "\n")
