"""Refuse to serve open to the network: auth off is for a laptop, never for a shared address.

With ``INFERFLUX_AUTH=false`` the router accepts anyone who can reach it. That is allowed on a
loopback address (local mode), with a loud warning, and anywhere else only when
``INFERFLUX_AUTH_ALLOW_OPEN=true`` says the operator really means it.
"""

from __future__ import annotations

import ipaddress
import logging

from inferflux.router.settings import Settings, SettingsError

log = logging.getLogger("inferflux.router.identity")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_exposure(settings: Settings) -> None:
    """Raise `SettingsError` when auth is off on a non-loopback host without the explicit flag."""
    if settings.auth:
        return
    loopback = is_loopback(settings.host)
    if not loopback and not settings.auth_allow_open:
        raise SettingsError(
            f"refusing to serve {settings.host} with INFERFLUX_AUTH=false: anyone who can reach it could "
            "use every model; turn auth on, bind 127.0.0.1, or set INFERFLUX_AUTH_ALLOW_OPEN=true"
        )
    log.warning(
        "AUTHENTICATION IS OFF: every request to %s:%d is served without a credential%s",
        settings.host,
        settings.port,
        "" if loopback else " (INFERFLUX_AUTH_ALLOW_OPEN=true)",
    )
