"""The store: the feed log, records, cursors and full-text search in SQLite or PostgreSQL.
May use records and protocol; knows nothing of the network."""
