"""Vagrant's docker provider for hosts without hardware virtualisation, and the CI job that boots it."""
