"""Versioned prompt manifests, their checksums, the resolver and anti-injection sanitisation."""
