"""Experiments: measurements that run in a lab of their own and report what the kernel really does."""
