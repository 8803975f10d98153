"""The admin API: tenants, API keys and tenant secrets, on a listener of its own (router/admin/app.py)."""
