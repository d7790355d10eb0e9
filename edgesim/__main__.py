"""`python -m edgesim …` is the `edgesim` console script."""

from edgesim.cli import main

main()
