"""The audit subsystem as the router process builds it: settings checked up front, retention by the
tenants' policies, and a real ``python -m inferflux.router`` that records admin actions and leaves
a sealed chain after SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from inferflux.crds.audit import AuditPolicy, RetentionDays
from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.audit.segments import segments
from inferflux.router.audit.service import Audit, AuditConfigError
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import Settings
from tests.router.audit.conftest import Keys, Verify, request

TOKEN = "bootstrap-admin-token-0123456789"


def settings(tmp_path: Path, keys: Keys, **changes: object) -> Settings:
    secret = tmp_path / "audit-secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    values: dict[str, object] = {
        "audit_dir": str(tmp_path / "audit"),
        "audit_chain": "router-0",
        "audit_signing_key_file": str(keys.private),
        "audit_secret_file": str(secret),
        "audit_segment_bytes": 2000,
    }
    return Settings(**(values | changes))  # type: ignore[arg-type]


def test_audit_is_off_without_a_folder() -> None:
    assert Audit.from_settings(Settings()) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"audit_signing_key_file": ""}, "INFERFLUX_AUDIT_SIGNING_KEY_FILE (inferctl audit keygen)"),
        (
            {"audit_signing_key_file": "/nonexistent"},
            "INFERFLUX_AUDIT_SIGNING_KEY_FILE: /nonexistent: cannot read",
        ),
        ({"audit_secret_file": "/nonexistent"}, "INFERFLUX_AUDIT_SECRET_FILE: cannot read"),
        ({"audit_chain": "../x"}, "chain name"),
    ],
)
def test_unusable_settings_are_one_line(tmp_path: Path, keys: Keys, changes: dict, message: str) -> None:
    with pytest.raises(AuditConfigError) as caught:
        Audit.from_settings(settings(tmp_path, keys, **changes))
    assert message in str(caught.value)


def test_a_short_secret_is_refused(tmp_path: Path, keys: Keys) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"canary-short")
    with pytest.raises(AuditConfigError, match="at least 32 bytes") as caught:
        Audit.from_settings(settings(tmp_path, keys, audit_secret_file=str(short)))
    assert "canary" not in str(caught.value)


async def test_retention_follows_each_tenants_policy(tmp_path: Path, keys: Keys) -> None:
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "brief": TenantPolicy(name="brief", audit=AuditPolicy(retention_days=RetentionDays.DAYS_30)),
                "keeper": TenantPolicy(
                    name="keeper", audit=AuditPolicy(retention_days=RetentionDays.DAYS_180)
                ),
            }
        )
    )
    audit = Audit.from_settings(settings(tmp_path, keys))
    assert audit is not None
    audit.start(holder)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    for number in range(20):
        audit.log.append(request(number, "brief", old))
    for number in range(20):
        audit.log.append(request(number, "keeper", old))
    for number in range(5):
        audit.log.append(request(number, "brief"))  # today: keeps the active segment busy
    result = await audit.prune_now(holder)
    await audit.close()
    assert result.removed
    left = [
        orjson.loads(line)
        for path in segments(audit.log.chain_dir)
        for line in path.read_bytes().splitlines()
    ]
    assert sum(1 for entry in left if entry.get("tenant") == "keeper") == 20  # 180 days: all kept
    assert any(entry["kind"] == "pruned" for entry in left)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_router_process_records_admin_actions_and_seals_its_chain(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    configured = settings(tmp_path, keys)
    (tmp_path / "auth-secret").write_bytes(os.urandom(32).hex().encode())
    (tmp_path / "admin-token").write_text(TOKEN)
    admin_port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "INFERFLUX_ROUTER_PORT": str(free_port()),
        "INFERFLUX_ADMIN_PORT": str(admin_port),
        "INFERFLUX_AUTH_SECRET_FILE": str(tmp_path / "auth-secret"),
        "INFERFLUX_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"),
        "INFERFLUX_AUDIT_DIR": configured.audit_dir,
        "INFERFLUX_AUDIT_CHAIN": "router-0",
        "INFERFLUX_AUDIT_SIGNING_KEY_FILE": configured.audit_signing_key_file,
        "INFERFLUX_AUDIT_SECRET_FILE": configured.audit_secret_file,
    }
    process = subprocess.Popen([sys.executable, "-m", "inferflux.router"], env=env, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{admin_port}/admin/v1"
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        deadline = time.monotonic() + 60
        while True:
            try:
                put = urllib.request.Request(
                    f"{base}/tenants/team-a", data=b"{}", method="PUT", headers=headers
                )
                with urllib.request.urlopen(put, timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "the admin API did not come up"
                time.sleep(0.1)
        export = urllib.request.Request(f"{base}/audit?tenant=team-a", headers=headers)
        with urllib.request.urlopen(export, timeout=5) as response:
            exported = [orjson.loads(line) for line in response.read().splitlines()]
        # The PUT; the export itself may follow (it is recorded as it starts to stream).
        put = exported[0]
        assert (put["kind"], put["method"], put["path"], put["actor"]) == (
            "admin",
            "PUT",
            "/admin/v1/tenants/team-a",
            "bootstrap",
        )
        assert all(entry["path"] == "/admin/v1/audit" for entry in exported[1:])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0
    result = verify(Path(configured.audit_dir))
    assert result.returncode == 0, result.stderr
    assert "0 records after it" in result.stdout  # SIGTERM sealed the head with a checkpoint


def test_a_missing_signing_key_stops_the_router_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "auth-secret").write_bytes(os.urandom(32).hex().encode())
    result = subprocess.run(
        [sys.executable, "-m", "inferflux.router"],
        env={
            "PATH": "/usr/bin:/bin",
            "INFERFLUX_AUTH_SECRET_FILE": str(tmp_path / "auth-secret"),
            "INFERFLUX_AUDIT_DIR": str(tmp_path / "audit"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "INFERFLUX_AUDIT_SIGNING_KEY_FILE" in result.stderr
