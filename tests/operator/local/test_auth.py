"""Local auth: open only on loopback unless asked, secret files private and kept across runs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inferflux.operator.local.auth import ExposureError, LocalAuth, check_exposure, is_loopback, private_file


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("my-laptop.lan", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_on_another_address_needs_the_explicit_flag() -> None:
    check_exposure("127.0.0.1", auth=False, allow_open=False)
    check_exposure("0.0.0.0", auth=True, allow_open=False)
    check_exposure("0.0.0.0", auth=False, allow_open=True)
    with pytest.raises(
        ExposureError, match=r"refusing to serve 0\.0\.0\.0 with auth off.*--auth.*--allow-open"
    ):
        check_exposure("0.0.0.0", auth=False, allow_open=False)


def test_private_file_is_0600_random_and_kept(tmp_path: Path) -> None:
    first = private_file(tmp_path / "auth" / "secret", 48)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    value = first.read_text()
    assert len(value.encode()) >= 32
    first.chmod(0o644)
    assert private_file(first, 48).read_text() == value, "an existing secret is kept, not replaced"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert private_file(tmp_path / "other", 48).read_text() != value


def test_router_env_with_auth_off_on_loopback(tmp_path: Path) -> None:
    env = LocalAuth(enabled=False).router_env(tmp_path, "127.0.0.1")
    assert env == {
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_ADMIN_HOST": "127.0.0.1",
        "INFERFLUX_ADMIN_PORT": "8001",
    }
    assert not (tmp_path / "auth").exists()


def test_router_env_open_on_purpose_says_so_to_the_router(tmp_path: Path) -> None:
    env = LocalAuth(enabled=False, allow_open=True).router_env(tmp_path, "0.0.0.0")
    assert env["INFERFLUX_AUTH"] == "false"
    assert env["INFERFLUX_AUTH_ALLOW_OPEN"] == "true"


def test_router_env_with_auth_points_at_generated_secrets(tmp_path: Path) -> None:
    auth = LocalAuth(enabled=True, admin_port=9101)
    env = auth.router_env(tmp_path, "0.0.0.0")
    assert env["INFERFLUX_AUTH"] == "true"
    assert "INFERFLUX_AUTH_ALLOW_OPEN" not in env
    assert env["INFERFLUX_ADMIN_PORT"] == "9101"
    assert env["INFERFLUX_ADMIN_HOST"] == "127.0.0.1"
    for name, path in (
        ("INFERFLUX_AUTH_SECRET_FILE", auth.secret_file(tmp_path)),
        ("INFERFLUX_ADMIN_TOKEN_FILE", auth.admin_token_file(tmp_path)),
    ):
        assert env[name] == str(path.resolve())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.secret_file(tmp_path).read_text() != auth.admin_token_file(tmp_path).read_text()
