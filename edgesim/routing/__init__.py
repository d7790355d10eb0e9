"""Anycast by BGP: BIRD on the router and every edge, what edges announce, and the router's ECMP routes."""
