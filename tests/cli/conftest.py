"""Fixtures for the CLI tests: a real HTTP file server on localhost and a real Ed25519 key pair."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
