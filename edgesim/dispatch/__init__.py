"""Socket dispatch with sk_lookup: bindings of (protocol, prefix, port or all ports) to labelled sockets."""
