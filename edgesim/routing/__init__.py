"""Anycast by BGP: BIRD on the router and every edge, what edges announce, and the router's ECMP routes."""

from edgesim.routing.control import announce, edge_down, edge_up, withdraw

__all__ = ["announce", "edge_down", "edge_up", "withdraw"]
