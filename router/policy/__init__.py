"""The policy the router enforces: tenants and keys, merged from the operator's snapshot and the store."""
