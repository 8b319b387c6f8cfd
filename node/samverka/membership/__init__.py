"""The node as a member of the federation: the held directory, enrollment, key rotation,
the mirror of the hub. May use every layer below (replication, transport, store, …)."""
