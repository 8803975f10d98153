"""Client certificates: uvicorn verifies them, this module tells the router whose they are.

With ``INFERFLUX_TLS_CLIENT_CA_FILE`` set, uvicorn serves TLS and requires a client certificate
signed by that CA (the TLS handshake fails otherwise). uvicorn does not pass the peer certificate
to the application, so `ClientCertProtocol` (the router's server protocol, extended) reads it once per
connection and puts its RFC 4514 subject (``CN=team-a,O=Example``) in every request's scope under
``inferflux.client_subject``. `Policy.subjects` maps that subject to a tenant.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cryptography import x509

from inferflux.router.asgi import Scope
from inferflux.router.identity.principal import Principal, within
from inferflux.router.policy.effective import Policy
from inferflux.router.server_protocol import CoalescingProtocol
from inferflux.router.settings import Settings, SettingsError

SUBJECT_KEY = "inferflux.client_subject"


def peer_subject(transport: asyncio.BaseTransport) -> str | None:
    """The RFC 4514 subject of the certificate the TLS peer presented, if any."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


class ClientCertProtocol(CoalescingProtocol):
    """The router's server protocol (router/server_protocol.py), adding the client certificate's
    subject to each scope."""

    client_subject: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_subject = peer_subject(transport)  # once per connection, not per request

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[SUBJECT_KEY] = self.client_subject  # type: ignore[literal-required]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``: TLS and, with a client CA, mTLS."""
    if not settings.tls_cert_file and not settings.tls_client_ca_file:
        return {"http": CoalescingProtocol}
    if not settings.tls_cert_file or not settings.tls_key_file:
        raise SettingsError(
            "INFERFLUX_TLS_CERT_FILE and INFERFLUX_TLS_KEY_FILE go together (and mTLS needs both)"
        )
    options: dict[str, Any] = {
        "http": CoalescingProtocol,
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file,
    }
    if settings.tls_client_ca_file:
        options |= {
            "http": ClientCertProtocol,
            "ssl_ca_certs": settings.tls_client_ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    return options


def authenticate(scope: Scope, policy: Policy) -> Principal | None:
    """The principal of the request's client certificate; None when the connection had none."""
    subject = scope.get(SUBJECT_KEY)
    if subject is None:
        return None
    name = policy.subjects.get(subject)
    tenant = policy.tenants.get(name) if name is not None else None
    return within(tenant, "certificate", subject, unknown="unknown_subject")
