"""The tamper-evident audit log: hash-chained, signed, durable NDJSON segments (docs/audit.md)."""
