"""A real OpenID Connect provider for the e2e tests: Dex, run as a local process on loopback.

The router verifies JWTs from an issuer's JWKS; testing that against keys the test suite made
itself would only prove the router agrees with the test. So this module runs Dex, built from its
Go module by ``make oidc-bin`` (pinned in ``e2e/oidc/go.mod``), the way the control plane is run
from ``make cluster-bin``:

- in-memory storage (nothing on disk but its config and log, in one temporary folder);
- issuer ``http://127.0.0.1:<free port>/dex``;
- one static, confidential client (a random secret per run);
- one static user in Dex's password database (a random password per run, stored as a bcrypt
  hash, which is all Dex accepts);
- the OAuth 2.0 resource-owner password grant, so a test gets a token over plain HTTP with no
  browser: :meth:`DexProvider.token`.

Dex signs ID tokens with RS256 under a key it generates at start and publishes in its JWKS.

The process gets its own session, ``PR_SET_PDEATHSIG`` and an ``atexit`` hook, like the control
plane's. The pytest fixture ``oidc_provider`` (session scope, started on first use) is registered
by ``e2e/conftest.py``; docs/testing.md is the user guide.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from cluster_fixture import KEEP_ENV, REPO, Component, free_port

#: Where ``make oidc-bin`` puts Dex; ``INFERFLUX_E2E_OIDC_BIN_DIR`` points elsewhere.
DEFAULT_BIN_DIR = Path(os.environ.get("INFERFLUX_E2E_OIDC_BIN_DIR") or REPO / ".cache" / "oidc-bin")
CLIENT_ID = "inferflux-e2e"
#: How long Dex's ID tokens live, as configured; tests check ``exp - iat`` against it.
ID_TOKEN_SECONDS = 600
#: The scopes a token is asked for by default: ``email`` puts the user's address in the token.
DEFAULT_SCOPES = ("openid", "email", "profile")


class OidcError(RuntimeError):
    """Dex is missing, failed to start, or refused a token request (the message says which)."""


@dataclass(frozen=True)
class StaticUser:
    """The one user in Dex's password database."""

    email: str
    username: str
    user_id: str
    password: str


def find_dex(bin_dir: Path = DEFAULT_BIN_DIR) -> Path:
    """The Dex binary, or one error naming the fix."""
    path = bin_dir / "dex"
    if not os.access(path, os.X_OK):
        raise OidcError(
            f"missing the OIDC provider binary {path}. "
            "Run `make oidc-bin` (Dex from its Go module: minutes cold, seconds when warm)."
        )
    return path


def stop_process(component: Component, grace: float = 5.0) -> None:
    """SIGTERM the process group of ``component``, SIGKILL it after ``grace`` s, close its log."""
    component.signal(signal.SIGTERM)
    if component.process is not None:
        try:
            component.process.wait(grace)
        except subprocess.TimeoutExpired:
            component.signal(signal.SIGKILL)
            component.process.wait()
    component.close_log()


class DexProvider:
    """Dex on a free loopback port, with one client and one user; :meth:`start`, :meth:`stop`."""

    def __init__(self, bin_dir: Path = DEFAULT_BIN_DIR, *, keep: bool | None = None) -> None:
        self.binary = find_dex(bin_dir)
        self.keep = os.environ.get(KEEP_ENV, "") not in ("", "0") if keep is None else keep
        self.workdir = Path(tempfile.mkdtemp(prefix="inferflux-oidc-"))
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/dex"
        self.client_id = CLIENT_ID
        self.client_secret = secrets.token_urlsafe(32)
        self.user = StaticUser(
            email="alice@example.com",
            username="alice",
            user_id="0b6f2e1c-5a4d-4c1e-9f3b-7d2a8e6c4b10",
            password=secrets.token_urlsafe(18),
        )
        self.config_path = self.workdir / "config.yaml"
        self.component = Component(
            "dex", [str(self.binary), "serve", str(self.config_path)], self.workdir / "dex.log"
        )
        self._http = httpx.Client(timeout=10, trust_env=False)  # loopback only, never via a proxy
        self._started = False
        self._stopped = False
        atexit.register(self.stop)

    # -- the provider's documents -----------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Dex's configuration file (written as JSON, which Dex's YAML reader accepts)."""
        password_hash = bcrypt.hashpw(self.user.password.encode(), bcrypt.gensalt(rounds=10))
        return {
            "issuer": self.issuer,
            "storage": {"type": "memory"},
            "web": {"http": f"127.0.0.1:{self.port}"},
            "logger": {"level": "info", "format": "json"},
            "expiry": {"idTokens": f"{ID_TOKEN_SECONDS}s"},
            "oauth2": {"passwordConnector": "local", "skipApprovalScreen": True},
            "enablePasswordDB": True,
            "staticClients": [
                {
                    "id": self.client_id,
                    "secret": self.client_secret,
                    "name": "InferFlux e2e",
                    "redirectURIs": [f"http://127.0.0.1:{self.port}/unused-callback"],
                }
            ],
            "staticPasswords": [
                {
                    "email": self.user.email,
                    "hash": password_hash.decode(),
                    "username": self.user.username,
                    "userID": self.user.user_id,
                }
            ],
        }

    def discovery(self) -> dict[str, Any]:
        """The served ``/.well-known/openid-configuration`` document."""
        response = self._http.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def jwks(self) -> dict[str, Any]:
        """The served JSON Web Key Set, from the URL the discovery document names."""
        response = self._http.get(self.discovery()["jwks_uri"])
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    # -- tokens -----------------------------------------------------------------------------

    def password_grant(
        self,
        username: str,
        password: str,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        *,
        client_secret: str | None = None,
    ) -> httpx.Response:
        """POST the password grant to the token endpoint as the static client (its secret by default)."""
        return self._http.post(
            self.discovery()["token_endpoint"],
            data={
                "grant_type": "password",
                "username": username,
                "password": password,
                "scope": " ".join(scopes),
            },
            auth=(self.client_id, self.client_secret if client_secret is None else client_secret),
        )

    def token(self, scopes: Sequence[str] = DEFAULT_SCOPES) -> str:
        """A fresh ID token for the static user (Dex logs in by email), or `OidcError`."""
        response = self.password_grant(self.user.email, self.user.password, scopes)
        if response.status_code != 200:
            raise OidcError(f"Dex refused the password grant: {response.status_code} {response.text}")
        id_token: str = response.json()["id_token"]
        return id_token

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> DexProvider:
        """Write the config, start Dex and wait for its discovery document; stop it on failure."""
        if self._started:
            return self
        self._started = True
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.config_path.chmod(0o600)
        env = {"HOME": str(self.workdir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.component.start(env)
        deadline = time.monotonic() + timeout
        try:
            while not self._serving():
                if not self.component.running():
                    raise OidcError(f"Dex exited with status {self._returncode()}")
                if time.monotonic() > deadline:
                    raise OidcError(f"Dex did not serve {self.issuer} within {timeout:.0f} s")
                time.sleep(0.1)
        except BaseException as error:
            self.stop(remove=False)
            log = self.component.log_tail()
            self.stop()
            if isinstance(error, OidcError):
                raise OidcError(f"{error}\n--- dex (last lines) ---\n{log}") from None
            raise
        return self

    def stop(self, *, remove: bool = True, grace: float = 5.0) -> None:
        """SIGTERM Dex, SIGKILL it after ``grace`` s, and remove the folder (unless kept)."""
        if not self._stopped:
            self._stopped = True
            atexit.unregister(self.stop)
            self._http.close()
            stop_process(self.component, grace)
        if remove and self.workdir.exists():
            if self.keep:
                print(f"\n[{KEEP_ENV}] OIDC provider folder kept: {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DexProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """Everything Dex has logged so far."""
        return self.component.log_path.read_text(errors="replace")

    def _serving(self) -> bool:
        try:
            return self.discovery().get("issuer") == self.issuer
        except (httpx.HTTPError, ValueError):
            return False

    def _returncode(self) -> int | None:
        return self.component.process.returncode if self.component.process else None


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[DexProvider]:
    """The session's Dex: started on first use, stopped and removed after the session.

    A missing binary fails (never skips) the tests that need it, saying to run ``make oidc-bin``.
    """
    provider = _started_or_why()
    if isinstance(provider, str):  # failing here, outside the handler: no chained traceback
        pytest.fail(provider, pytrace=False)
    with provider:
        yield provider


def _started_or_why() -> DexProvider | str:
    """A started provider, or why there is none (with Dex's last log lines)."""
    try:
        return DexProvider().start()
    except OidcError as error:
        return str(error)
