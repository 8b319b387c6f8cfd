"""gRPC over mutual TLS: the FeedService server, clients for peers and the hub, and the PKI.
May use store, records and protocol."""
