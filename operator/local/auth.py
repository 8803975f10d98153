"""Who may use a local router: open on loopback by default, keys with ``--auth``, never open by accident.

On 127.0.0.1 only this machine's users reach the router, so ``inferctl up`` runs it with auth off
(and says so loudly). Any other address with auth off is refused unless the user says they mean it
(``--allow-open``), because anyone on the network could then use every model.

With auth on, the router needs its hashing secret and a bootstrap admin token; both are generated
into the run folder once, readable by the owner only (0600), and kept across runs so that keys
stored in a persistent policy store stay valid.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_BYTES = 48  # base64url-encoded: 64 characters, more than the router's 32-byte minimum
ADMIN_TOKEN_BYTES = 32
ADMIN_HOST = "127.0.0.1"


class ExposureError(ValueError):
    """Serving open on an address other machines can reach, without saying so."""


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (a name other than localhost counts as reachable)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth: bool, allow_open: bool) -> None:
    """Raise `ExposureError` for auth off on a non-loopback address without ``allow_open``."""
    if not auth and not allow_open and not is_loopback(host):
        raise ExposureError(
            f"refusing to serve {host} with auth off: anyone who can reach it could use every model; "
            "add --auth to require API keys, or --allow-open if that is what you mean"
        )


def private_file(path: Path, nbytes: int) -> Path:
    """``path`` holding a random base64url token, created 0600 when missing; an existing one is kept
    (and made 0600 again)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return path
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(nbytes))
    return path


@dataclass(frozen=True)
class LocalAuth:
    """The router's identity settings for one ``inferctl up``."""

    enabled: bool
    allow_open: bool = False
    admin_port: int = 8001

    def secret_file(self, run_dir: Path) -> Path:
        """The API-key hashing secret."""
        return run_dir / "auth" / "hashing-secret"

    def admin_token_file(self, run_dir: Path) -> Path:
        """The bootstrap admin token (what the banner points at)."""
        return run_dir / "auth" / "admin-token"

    def router_env(self, run_dir: Path, host: str) -> dict[str, str]:
        """The router's ``INFERFLUX_AUTH*`` and admin settings; generates the secret files with auth on."""
        check_exposure(host, self.enabled, self.allow_open)
        env = {
            "INFERFLUX_AUTH": "true" if self.enabled else "false",
            "INFERFLUX_ADMIN_HOST": ADMIN_HOST,
            "INFERFLUX_ADMIN_PORT": str(self.admin_port),
        }
        if self.enabled:
            env["INFERFLUX_AUTH_SECRET_FILE"] = str(
                private_file(self.secret_file(run_dir), SECRET_BYTES).resolve()
            )
            token = private_file(self.admin_token_file(run_dir), ADMIN_TOKEN_BYTES)
            env["INFERFLUX_ADMIN_TOKEN_FILE"] = str(token.resolve())
        elif not is_loopback(host):
            env["INFERFLUX_AUTH_ALLOW_OPEN"] = "true"
        return env
