"""XDP DoS mitigation: rules, their BPF maps, the per-edge agent, and the `mitigate` tasks."""
