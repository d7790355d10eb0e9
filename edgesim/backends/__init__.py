"""Backends create and destroy nodes and links and run commands in nodes; nothing else."""

from edgesim.backends.base import Backend
from edgesim.backends.netns import NetnsBackend

BACKENDS: dict[str, type[Backend]] = {"netns": NetnsBackend}


def get_backend(name: str) -> Backend:
    """The backend called `name`."""
    return BACKENDS[name]()
