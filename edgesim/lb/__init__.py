"""The XDP layer-4 load balancer: consistent-hashing table, backplane, drain and health (issue 4)."""
