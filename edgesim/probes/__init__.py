"""Reading the kernel's view of sockets and stacks inside a namespace: sock_diag, TCP_INFO, SNMP counters."""
