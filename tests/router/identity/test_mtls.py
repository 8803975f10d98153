"""mTLS with real certificates (made by `cryptography`) and a real TLS client (aiohttp over ssl), and
router-to-runtime TLS verified against a private CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.identity.mtls import ClientCertProtocol, uvicorn_options
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.server_protocol import CoalescingProtocol
from inferflux.router.settings import Settings, SettingsError

CHAT = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def _name(**parts: str) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in parts.items()])


class Authority:
    """A throwaway CA that issues server and client certificates into ``folder``."""

    def __init__(self, folder: Path, name: str = "test-ca") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(CN=name)
        self.cert = self._build(self.name, self.key.public_key(), ca=True)
        self.cert_file = self._write(name, self.cert, self.key)[0]

    def _build(
        self, subject: x509.Name, public: Any, ca: bool = False, ip: str | None = None
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())

    def _write(self, stem: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
        cert_file, key_file = self.folder / f"{stem}.crt", self.folder / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_file, key_file

    def issue(self, stem: str, subject: x509.Name, ip: str | None = None) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        return self._write(stem, self._build(subject, key.public_key(), ip=ip), key)


def client_context(ca: Authority, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


@pytest.fixture
async def mtls_router(tmp_path, make_router, mocks, route) -> Any:
    ca = Authority(tmp_path)
    server_cert, server_key = ca.issue("server", _name(CN="router"), ip="127.0.0.1")
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "alpha": TenantPolicy(
                    name="alpha", models=["a"], certificate_subjects=["CN=team-a,O=Example"]
                ),
                "frozen": TenantPolicy(name="frozen", suspended=True, certificate_subjects=["CN=team-f"]),
            }
        )
    )
    backend = await mocks()
    harness = await make_router(
        {"a": route([backend.url], name="a"), "b": route([backend.url], name="b")},
        policy=holder,
        auth=True,
        tls_cert_file=str(server_cert),
        tls_key_file=str(server_key),
        tls_client_ca_file=str(ca.cert_file),
    )
    return ca, harness


@pytest.mark.parametrize(
    ("subject", "model", "status"),
    [
        (_name(O="Example", CN="team-a"), "a", 200),
        (_name(O="Example", CN="team-a"), "b", 403),
        (_name(O="Example", CN="team-x"), "a", 401),
        (_name(CN="team-f"), "a", 401),
    ],
    ids=["mapped subject", "mapped subject, other model", "unmapped subject", "suspended tenant"],
)
async def test_client_certificate_subject_maps_to_a_tenant(mtls_router, subject, model, status) -> None:
    ca, harness = mtls_router
    cert = ca.issue("client", subject)
    async with harness.post(
        "/v1/chat/completions", {**CHAT, "model": model}, ssl=client_context(ca, cert)
    ) as response:
        assert response.status == status
        payload = await response.json()
    if status == 200:
        assert payload["choices"][0]["message"]["content"] == "t0 t1 t2 "
    else:
        assert payload["error"]["code"] == ("invalid_token" if status == 401 else "insufficient_scope")


async def test_no_client_certificate_no_request(mtls_router) -> None:
    ca, harness = mtls_router
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
        async with harness.post("/v1/chat/completions", CHAT, ssl=client_context(ca, None)) as response:
            await response.read()


async def test_a_certificate_from_another_ca_is_refused(mtls_router, tmp_path) -> None:
    ca, harness = mtls_router
    (tmp_path / "stranger").mkdir()
    stranger = Authority(tmp_path / "stranger", name="stranger-ca")
    cert = stranger.issue("stranger-client", _name(O="Example", CN="team-a"))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
        async with harness.post("/v1/chat/completions", CHAT, ssl=client_context(ca, cert)) as response:
            await response.read()


def test_uvicorn_options() -> None:
    assert uvicorn_options(Settings()) == {"http": CoalescingProtocol}
    tls = uvicorn_options(Settings(tls_cert_file="c.pem", tls_key_file="k.pem"))
    assert tls == {"http": CoalescingProtocol, "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"}
    mutual = uvicorn_options(
        Settings(tls_cert_file="c.pem", tls_key_file="k.pem", tls_client_ca_file="ca.pem")
    )
    assert mutual["http"] is ClientCertProtocol
    assert (mutual["ssl_ca_certs"], mutual["ssl_cert_reqs"]) == ("ca.pem", ssl.CERT_REQUIRED)
    with pytest.raises(SettingsError, match="INFERFLUX_TLS_CERT_FILE"):
        uvicorn_options(Settings(tls_client_ca_file="ca.pem"))


MESSAGES_REQUEST = {"model": "a", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "a",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "over tls"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


async def test_https_runtimes_are_verified_against_the_upstream_ca(tmp_path, make_router, route) -> None:
    """Both runtime paths: the direct client (/v1/chat/completions) and the chain (/v1/messages)."""
    ca = Authority(tmp_path)
    cert, key = ca.issue("runtime", _name(CN="runtime"), ip="127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(cert), str(key))

    async def chat(request: web.Request) -> web.Response:
        return web.json_response(COMPLETION)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    models = {"a": route([f"https://127.0.0.1:{port}"], name="a")}
    try:
        system_cas = await make_router(models)
        async with system_cas.post("/v1/chat/completions", CHAT) as response:
            assert response.status == 503  # a certificate from an unknown CA: no connection
        async with system_cas.post("/v1/messages", MESSAGES_REQUEST) as response:
            assert response.status == 503
        private_ca = await make_router(models, upstream_ca_file=str(ca.cert_file))
        async with private_ca.post("/v1/chat/completions", CHAT) as response:
            assert response.status == 200
            assert (await response.json())["choices"][0]["message"]["content"] == "over tls"
        async with private_ca.post("/v1/messages", MESSAGES_REQUEST) as response:
            assert response.status == 200
            assert (await response.json())["content"][0]["text"] == "over tls"
    finally:
        await runner.cleanup()
