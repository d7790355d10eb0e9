"""The `edgesim` console script: the same task collection as `invoke`, usable from any directory."""

from __future__ import annotations

from invoke import Program

from edgesim import __version__
from edgesim.tasks import ns

program = Program(namespace=ns, name="edgesim", binary="edgesim", version=__version__)


def main() -> None:
    """Run the edgesim program (`edgesim up`, `edgesim test`, `edgesim --list`)."""
    program.run()
