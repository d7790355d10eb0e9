"""edgesim: a multi-node edge network simulator."""

__version__ = "0.1.0"
