"""Who is calling: API keys, OIDC tokens and client certificates, turned into one `Principal`."""
