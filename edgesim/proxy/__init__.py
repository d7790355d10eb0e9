"""The edges' TCP proxy to an origin host, with keepalive, TCP_USER_TIMEOUT and a drain-pace check."""
