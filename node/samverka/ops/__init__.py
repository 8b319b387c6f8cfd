"""Operating a node: metrics, logs, backup and doctor. May use every layer below; only
cli and demo stand above it."""
