"""The entry point: secrets and key files read up front, one readable line and exit 2 when unusable."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from inferflux.router.__main__ import StartupError, hasher_for, keyring_for, store_for
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore, RedisPolicyStore
from inferflux.router.settings import Settings


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferflux.router"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "INFERFLUX_AUTH_SECRET_FILE must name"),
        (b"short-canary", "fewer than 32 bytes"),
        ("missing", "cannot read"),
    ],
)
def test_auth_without_a_usable_hashing_secret_exits_2_with_one_line(
    tmp_path: Path, secret, reason: str
) -> None:
    env: dict[str, str] = {}
    if secret == "missing":
        env["INFERFLUX_AUTH_SECRET_FILE"] = str(tmp_path / "absent")
    elif secret is not None:
        (tmp_path / "secret").write_bytes(secret)
        env["INFERFLUX_AUTH_SECRET_FILE"] = str(tmp_path / "secret")
    result = run(env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert reason in result.stderr
    assert "canary" not in result.stderr, "the secret itself is never printed"


def test_a_policy_file_that_does_not_parse_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text('{"tenants": {"a": {"name": "a", "scopes": ["root"]}}}')
    result = run({"INFERFLUX_POLICY_FILE": str(tmp_path / "policy.json")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "policy snapshot invalid at tenants.a.scopes.0" in result.stderr


def test_a_busy_admin_port_exits_2_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            {"INFERFLUX_AUTH": "false", "INFERFLUX_ROUTER_PORT": "0", "INFERFLUX_ADMIN_PORT": str(port)}
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"inferflux-router: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_serving_open_on_a_shared_address_is_refused_at_start() -> None:
    result = run(
        {
            "INFERFLUX_AUTH": "false",
            "INFERFLUX_ROUTER_HOST": "0.0.0.0",
            "INFERFLUX_ROUTER_PORT": "0",
            "INFERFLUX_ADMIN_PORT": "0",
        }
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("inferflux-router: refusing to serve 0.0.0.0")
    assert "Traceback" not in result.stderr


def test_hasher_and_keyring_from_files(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(os.urandom(24).hex().encode() + b"\n")
    assert hasher_for(Settings(auth_secret_file=str(tmp_path / "secret"))) is not None
    assert hasher_for(Settings(auth=False)) is None
    assert keyring_for(Settings()) is None
    (tmp_path / "kek.json").write_text(
        json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(os.urandom(32)).decode()}})
    )
    ring = keyring_for(Settings(kek_file=str(tmp_path / "kek.json")))
    assert ring is not None
    assert ring.current == "k1"
    (tmp_path / "kek.json").write_text("{}")
    with pytest.raises(StartupError, match="INFERFLUX_KEK_FILE"):
        keyring_for(Settings(kek_file=str(tmp_path / "kek.json")))


def test_the_store_is_redis_only_when_a_url_is_set() -> None:
    assert isinstance(store_for(Settings(), PolicyHolder()), MemoryPolicyStore)
    assert isinstance(
        store_for(Settings(redis_url="redis://127.0.0.1:1/0"), PolicyHolder()), RedisPolicyStore
    )


def test_a_pricing_file_with_a_wrong_checksum_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "pricing.yaml").write_text(
        "version: '1'\ncurrency: EUR\nmodels: {m: {inputPerMillion: 1, outputPerMillion: 2, maxOutputTokens: 8}}\n"
        "checksum: sha256:" + "0" * 64 + "\n"
    )
    result = run({"INFERFLUX_AUTH": "false", "INFERFLUX_PRICING_FILE": str(tmp_path / "pricing.yaml")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "checksum" in result.stderr
    assert "inferctl pricing checksum" in result.stderr, "it says how to fix it"
