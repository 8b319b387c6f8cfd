"""Moving entries between holders: ingest, push, sync, bundles and the crosscheck of heads.
May use transport, store, records and protocol."""
