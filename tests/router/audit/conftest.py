"""Audit fixtures: a real signing key pair on disk, and a helper that writes a chain of real records."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from inferflux.router.audit import signing
from inferflux.router.audit.log import AuditLog, Options
from inferflux.router.audit.records import RequestRecord

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path

    def signer(self) -> signing.Signer:
        return signing.Signer.from_file(self.private)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    private, public = tmp_path / "audit.pem", tmp_path / "audit.pub"
    signing.generate(private, public)
    return Keys(private, public)


def request(number: int, tenant: str = "team-a", when: dt.datetime = T0) -> RequestRecord:
    return RequestRecord(
        time=when,
        request_id=f"req-{number}",
        tenant=tenant,
        key_id="abcdefghijklmnop",
        route="chat.completions",
        model="smollm2",
        upstream="10.0.0.1:8080",
        status=200,
        prompt_tokens=12,
        completion_tokens=34,
        latency_ms=56.5,
        prompt_hmac="00" * 32,
    )


async def write_chain(
    directory: Path,
    keys: Keys,
    count: int,
    options: Options | None = None,
    chain: str = "router-0",
    tenant: str = "team-a",
) -> Path:
    """``count`` request records in a closed (sealed) chain; returns the chain folder."""
    audit = AuditLog(directory, chain, keys.signer(), options or Options(checkpoint_records=10))
    audit.open()
    audit.start()
    for number in range(count):
        audit.append(request(number, tenant))
    await audit.close()
    return audit.chain_dir


def inferctl(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``inferctl`` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "inferflux.cli.main", *args], capture_output=True, text=True, timeout=120
    )


Verify = Callable[[Path], subprocess.CompletedProcess[str]]


@pytest.fixture
def verify(keys: Keys) -> Verify:
    def run(directory: Path) -> subprocess.CompletedProcess[str]:
        return inferctl("audit", "verify", str(directory), "--public-key", str(keys.public))

    return run
