"""``inferctl admin`` against the real admin app, served by uvicorn on a loopback port."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from inferflux.cli.main import main
from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.secrets import Keyring
from inferflux.router.policy.store import MemoryPolicyStore

TOKEN = "cli-admin-token-0123456789abcdef"


@dataclass
class Served:
    url: str
    holder: PolicyHolder
    store: MemoryPolicyStore
    keyring: Keyring


@pytest.fixture
def served() -> Iterator[Served]:
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants={"from-git": TenantPolicy(name="from-git")}))
    store = MemoryPolicyStore(holder)
    hasher = KeyHasher(os.urandom(32))
    keyring = Keyring("k1", {"k1": os.urandom(32)})
    app = create_app(AdminService(holder, store, hasher, keyring), AdminAuth(holder, hasher, TOKEN))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "admin app did not start"
        time.sleep(0.01)
    yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", holder, store, keyring)
    server.should_exit = True
    thread.join(10)


def admin(served: Served, *args: str) -> list[str]:
    return ["admin", *args, "--url", served.url, "--token", TOKEN]


def test_tenants_apply_list_get(served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "tenants.yaml"
    manifest.write_text(
        "name: team-a\nscopes: [inference]\nmodels: [gemma]\n---\n- name: team-b\n  suspended: true\n"
    )
    assert main(admin(served, "tenants", "apply", "-f", str(manifest))) == 0
    assert capsys.readouterr().out.splitlines() == ["tenant/team-a applied", "tenant/team-b applied"]
    assert main(admin(served, "tenants", "list")) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[:3] for row in rows] == [
        ["from-git", "resource", "active"],
        ["team-a", "admin", "active"],
        ["team-b", "admin", "suspended"],
    ]
    assert main(admin(served, "tenants", "get", "team-a", "-o", "json")) == 0
    assert '"models": [\n    "gemma"\n  ]' in capsys.readouterr().out


def test_keys_create_prints_the_key_once_then_list_rotate_revoke(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(admin(served, "keys", "create", "from-git", "--name", "ci", "--scopes", "inference")) == 0
    captured = capsys.readouterr()
    key = captured.out.strip()
    key_id = key.split("_")[1]
    assert key.startswith("ifx_")
    assert "shown once" in captured.err
    assert served.holder.current.keys[key_id].scopes == ["inference"]
    assert main(admin(served, "keys", "list", "from-git")) == 0
    listing = capsys.readouterr().out
    assert key_id in listing
    assert f"...{key[-4:]}" in listing
    assert key not in listing
    assert main(admin(served, "keys", "rotate", key_id, "--overlap", "60")) == 0
    rotated = capsys.readouterr()
    new_id = rotated.out.strip().split("_")[1]
    assert served.holder.current.keys[key_id].replaced_by == new_id
    assert main(admin(served, "keys", "revoke", new_id)) == 0
    assert "revoked at" in capsys.readouterr().out
    assert served.holder.current.keys[new_id].revoked_at is not None


def test_secrets_put_list_delete(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-canary-value\n"))
    assert main(admin(served, "secrets", "put", "from-git", "openai")) == 0
    assert main(admin(served, "secrets", "list", "from-git")) == 0
    out = capsys.readouterr().out
    assert "openai\tk1" in out
    assert "sk-canary-value" not in out
    assert main(admin(served, "secrets", "delete", "from-git", "openai")) == 0
    assert main(admin(served, "secrets", "list", "from-git")) == 0
    assert "openai" not in capsys.readouterr().out.split("deleted")[-1]


def test_errors_are_one_readable_line_and_a_non_zero_exit(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (admin(served, "tenants", "get", "nobody"), "404 tenant 'nobody' not found"),
        (admin(served, "tenants", "apply", "-f", "/nonexistent.yaml"), "cannot read /nonexistent.yaml"),
        (
            ["admin", "tenants", "list", "--url", served.url, "--token", "wrong"],
            "401 a valid admin credential",
        ),
        (["admin", "tenants", "list", "--url", "http://127.0.0.1:1", "--token", TOKEN], "cannot reach"),
        (admin(served, "keys", "create", "from-git", "--scopes", "admin"), "scopes not granted"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert message in err, err
    monkeypatch.delenv("INFERFLUX_ADMIN_TOKEN", raising=False)
    assert main(["admin", "tenants", "list", "--url", served.url]) == 1
    assert "pass --token or set INFERFLUX_ADMIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("INFERFLUX_ADMIN_TOKEN", TOKEN)
    assert main(["admin", "tenants", "list", "--url", served.url]) == 0
