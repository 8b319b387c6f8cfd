"""The protocol: signed entries, records' schema and vocabulary, verification, the signed
directory, kommunkoder. Pure (no I/O); imports nothing of samverka but errors and v1."""
