"""The edges' authoritative DNS on one UDP socket, behind a per-source eBPF socket filter (SO_ATTACH_BPF)."""
