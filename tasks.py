"""invoke entry point: the task collection lives in edgesim.tasks (also the `edgesim` console script)."""

from edgesim.tasks import ns

__all__ = ["ns"]
