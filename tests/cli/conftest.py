"""Fixtures for the CLI tests: an HTTP file server, an Ed25519 key pair, a fake OpenAI router."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


@dataclass
class Served:
    """A folder served over HTTP."""

    root: Path
    url: str


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[Served]:
    """Serve a fresh folder over HTTP on an ephemeral port."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Served(root, f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@dataclass
class Signer:
    """A publisher's Ed25519 key pair, with its public key written to a file as PEM."""

    key: Ed25519PrivateKey
    public_key_file: Path

    def sign(self, sha256_hex: str) -> str:
        """Base64 signature over the manifest bytes ``sha256:<digest>``."""
        return base64.b64encode(self.key.sign(f"sha256:{sha256_hex}".encode())).decode()


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "publisher.pub"
    path.write_bytes(pem)
    return Signer(key, path)


class FakeRouter:
    """A stand-in for an OpenAI-compatible router (the real one is driven in e2e/test_local_up.py).

    ``/v1/models`` lists two models; ``/v1/chat/completions`` streams ``Hel``, then waits for
    ``release`` before ``lo from <model>``, so a test can prove the first token was shown early.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "x"} for m in ("gemma", "tiny")
                ]
                self._json(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if body["model"] == "broken":
                    self._json(503, {"error": {"message": "no ready replica", "type": "unavailable"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self._event(body["model"], "Hel")
                fake.release.wait(10)
                self._event(body["model"], f"lo from {body['model']}")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, model: str, text: str) -> None:
                chunk = {
                    "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
                }  # fmt: skip
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


@pytest.fixture
def fake_router() -> Iterator[FakeRouter]:
    router = FakeRouter()
    thread = threading.Thread(target=router.server.serve_forever, daemon=True)
    thread.start()
    yield router
    router.release.set()
    router.server.shutdown()
    router.server.server_close()
