"""Samverka: a federated network where Swedish kommuner share signed AI experience.

The package is split into layers, in the order data flows; each imports only the layers
below it (docs/ARCHITECTURE.md, "Layers"; `make lint` checks it):

- :mod:`samverka.protocol`: signed entries, the records' schema, verification (pure);
- :mod:`samverka.records`: forms, inventory import, the publisher of the own feed;
- :mod:`samverka.store`: the feed log, records and search in SQLite or PostgreSQL;
- :mod:`samverka.transport`: gRPC over mutual TLS (server, clients, PKI);
- :mod:`samverka.replication`: ingest, push, sync, bundles, crosscheck;
- :mod:`samverka.membership`: the node as a member (directory, enrollment, mirror);
- :mod:`samverka.ops`: metrics, logs, backup, doctor;
- :mod:`samverka.cli` and :mod:`samverka_hub.demo` on top.

Beside them: :mod:`samverka.errors`, :mod:`samverka.closing`, :mod:`samverka.config`
and :mod:`samverka.node` (a node folder opened for use).
"""

__version__ = "0.1.0"
