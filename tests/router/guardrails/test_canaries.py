"""Canaries: no prompt text or personal data in anything the router writes, unless a tenant opted in.

A real ``python -m inferflux.router`` process runs with the audit log on (a signing key from
``inferctl audit keygen``), JSON logs at debug level into a file, and traces exported (every trace
kept) to a small OTLP/HTTP receiver here that stores each body it gets. The runtime is the fake one,
scripted to answer with the canary and the personal data too, so that both directions are covered.
Tenants that did not opt in send prompts carrying a canary string, an e-mail address, a card number,
an IBAN and a phone number: streamed and whole, on chat, completions and embeddings, one refused by
its guardrails, and one whose text a model check puts to the (fake) runtime. Then the audit
segments, the log file, the metrics page and every trace body are searched: none of those values is
in any of them. A tenant that opted in to prompt text
(``audit.recordPrompts``) gets it in its audit record, redacted: placeholders, not the values.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

router_process = importlib.import_module("inferflux_tests_router_process")  # loaded by conftest
CANARY = "zebra-canary-7f3c1e9d"  # the prompt text of tenants that did not opt in
KEPT_CANARY = "otter-canary-92ab4d07"  # the opted-in tenant's: expected in its audit record only
EMAIL = "canary.person@example.org"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
PHONE = "+44 20 7946 0958"
# Every form in which the values could show up (compact, or cut at a separator).
SECRETS = (
    CANARY,
    "zebra-canary",
    "canary.person",
    "4111111111111111",
    "4111 1111",
    "DE89370400",
    "7946 0958",
)
ADMIN_TOKEN = "admin-token-" + "y" * 40
TEXT = f"Note {CANARY}: write to {EMAIL}, card {CARD}, IBAN {IBAN}, phone {PHONE}."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OtlpSink:
    """An OTLP/HTTP receiver that keeps every body POSTed to ``/v1/traces``."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.runner: web.AppRunner | None = None
        self.port = free_port()

    async def _receive(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.json_response({})

    async def start(self) -> OtlpSink:
        app = web.Application()
        app.router.add_post("/v1/traces", self._receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def spans(self) -> list[dict[str, Any]]:
        return [
            span
            for body in self.bodies
            for resource in orjson.loads(body)["resourceSpans"]
            for scope in resource["scopeSpans"]
            for span in scope["spans"]
        ]


def inferctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferflux.cli.main", *args], capture_output=True, text=True, check=False
    )


class Router(router_process.RouterProcess):
    """The router with the audit log, JSON logs and trace export on; where it writes them."""

    def __init__(self, folder: Path, backend_url: str, otlp_port: int) -> None:
        self.folder = folder
        self.audit_dir = folder / "audit"
        private, public = folder / "signing.pem", folder / "signing.pub"
        keygen = inferctl("audit", "keygen", "--private", str(private), "--public", str(public))
        assert keygen.returncode == 0, keygen.stderr
        (folder / "audit-secret").write_bytes(os.urandom(48).hex().encode())
        (folder / "auth-secret").write_bytes(b"a" * 48)
        (folder / "admin-token").write_text(ADMIN_TOKEN)
        routes = {"m": {"name": "m", "engine": "llamacpp", "endpoints": [{"url": backend_url, "pod": "p"}]}}
        (folder / "routes.json").write_bytes(orjson.dumps({"version": 1, "models": routes}))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "INFERFLUX_ROUTER_HOST": "127.0.0.1",
            "INFERFLUX_ROUTER_PORT": str(free_port()),
            "INFERFLUX_ADMIN_PORT": str(free_port()),
            "INFERFLUX_AUTH_SECRET_FILE": str(folder / "auth-secret"),
            "INFERFLUX_ADMIN_TOKEN_FILE": str(folder / "admin-token"),
            "INFERFLUX_ROUTES_FILE": str(folder / "routes.json"),
            "INFERFLUX_AUDIT_DIR": str(self.audit_dir),
            "INFERFLUX_AUDIT_CHAIN": "canary-0",
            "INFERFLUX_AUDIT_SIGNING_KEY_FILE": str(folder / "signing.pem"),
            "INFERFLUX_AUDIT_SECRET_FILE": str(folder / "audit-secret"),
            "INFERFLUX_LOG_LEVEL": "debug",
            "INFERFLUX_LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "INFERFLUX_OTEL_SAMPLE_RATIO": "1",  # every trace exported, not only failed ones
        }
        super().__init__(env, folder / "router.log", ADMIN_TOKEN)

    async def tenant(self, name: str, body: dict[str, Any]) -> str:
        """Create tenant ``name`` and return an API key for it."""
        await self.admin("PUT", f"/tenants/{name}", body)
        return str((await self.admin("POST", f"/tenants/{name}/keys", {}))["key"])

    def audit_records(self) -> list[dict[str, Any]]:
        segments = sorted((self.audit_dir / "canary-0").glob("*.ndjson"))
        return [orjson.loads(line) for segment in segments for line in segment.read_bytes().splitlines()]


@pytest.fixture
async def running(mocks: Callable[..., Any], tmp_path: Path) -> AsyncIterator[tuple[Router, OtlpSink]]:
    backend = await mocks(replies=["Sure. ", CANARY, f" Mail {EMAIL}", f" or ring {PHONE}."])
    sink = await OtlpSink().start()
    router = await Router(tmp_path, backend.url, sink.port).start()
    try:
        yield router, sink
    finally:
        await router.stop()
        await sink.stop()


async def send(
    session: aiohttp.ClientSession, router: Router, key: str, path: str, document: dict[str, Any]
) -> int:
    url = f"http://127.0.0.1:{router.port}{path}"
    async with session.post(url, json=document, headers={"authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 4, **extra}


def leaks(name: str, data: bytes, values: tuple[str, ...]) -> list[str]:
    lowered = data.lower()
    return [f"{value!r} in {name}" for value in values if value.lower().encode() in lowered]


async def test_no_prompt_text_or_personal_data_is_written_unless_a_tenant_opted_in(
    running: tuple[Router, OtlpSink],
) -> None:
    router, sink = running
    quiet = await router.tenant("quiet", {})  # default policy: cards redacted, the rest passes
    strict = await router.tenant("strict", {"guardrails": {"pii": {"email": "block"}}})
    keeper = await router.tenant("keeper", {"audit": {"recordPrompts": True}})
    # The model check puts the (redacted) text to a served model; the fake one answers neither yes nor no.
    judged = await router.tenant("judged", {"guardrails": {"modelCheck": {"model": "m"}}})
    async with aiohttp.ClientSession() as session:
        statuses = [
            await send(session, router, quiet, "/v1/chat/completions", chat(TEXT)),
            await send(session, router, quiet, "/v1/chat/completions", chat(TEXT, stream=True)),
            await send(
                session, router, quiet, "/v1/completions", {"model": "m", "prompt": TEXT, "max_tokens": 4}
            ),
            await send(session, router, quiet, "/v1/embeddings", {"model": "m", "input": [TEXT]}),
            await send(session, router, strict, "/v1/chat/completions", chat(TEXT)),
            await send(
                session, router, keeper, "/v1/chat/completions", chat(TEXT.replace(CANARY, KEPT_CANARY))
            ),
            await send(session, router, judged, "/v1/chat/completions", chat(TEXT)),
        ]
        assert statuses == [200, 200, 200, 200, 400, 200, 200]
        async with session.get(f"http://127.0.0.1:{router.port}/metrics") as response:
            metrics = await response.read()
    assert await router.stop() == 0  # seals the chain, flushes the log and the trace exporter

    # What was written is about these requests (so that finding nothing in it means something).
    records = [record for record in router.audit_records() if record["kind"] == "request"]
    assert [record["tenant"] for record in records] == ["quiet"] * 4 + ["strict", "keeper", "judged"]
    assert all(record["prompt_hmac"] for record in records)
    assert {
        "direction": "input",
        "check": "pii",
        "subject": "email",
        "action": "block",
        "count": 1,
    } in records[4]["verdicts"]
    log = router.log.read_bytes()
    assert b"refused: input blocked by this tenant's guardrails: personal data (email)" in log
    assert b'inferflux_router_guardrail_verdicts_total{action="redact",check="pii"' in metrics
    assert b'{action="allow",check="model",direction="input",subject="unclear"} 1.0' in metrics
    spans = sink.spans()
    server_spans = [span for span in spans if span["kind"] == 2]
    assert len(server_spans) >= len(statuses)
    assert {"guardrails", "audit"} <= {span["name"] for span in spans}
    verified = inferctl(
        "audit", "verify", str(router.audit_dir), "--public-key", str(router.folder / "signing.pub")
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Nothing of the prompts or the answers, nor any personal data, anywhere.
    audit = b"".join(path.read_bytes() for path in router.audit_dir.rglob("*") if path.is_file())
    found = leaks("the audit log", audit, SECRETS)
    found += leaks("the log", log, (*SECRETS, KEPT_CANARY))
    found += leaks("the metrics", metrics, (*SECRETS, KEPT_CANARY))
    for number, body in enumerate(sink.bodies):
        found += leaks(f"trace body {number}", body, (*SECRETS, KEPT_CANARY))
    assert found == []

    # The tenant that opted in has its prompt in its record, redacted.
    kept = records[5]["prompt_text"]
    assert KEPT_CANARY in kept
    assert "[EMAIL]" in kept
    assert "[CARD]" in kept
    assert "[IBAN]" in kept
    assert "[PHONE]" in kept
    assert all("prompt_text" not in record for record in records[:5] + records[6:])
