"""Tenants: per-customer namespaces on every edge, their firewall from the config store, anycast GRE."""
