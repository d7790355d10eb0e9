"""The containerlab backend: each node of the plan a container that containerlab deploys."""
