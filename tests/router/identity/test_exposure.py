"""Auth off is refused on a shared address unless explicitly allowed, and always announced."""

from __future__ import annotations

import logging

import pytest

from inferflux.router.identity.exposure import check_exposure, is_loopback
from inferflux.router.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("router.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_on_a_shared_address_is_refused() -> None:
    with pytest.raises(SettingsError, match="INFERFLUX_AUTH_ALLOW_OPEN"):
        check_exposure(Settings(host="0.0.0.0", auth=False))


def test_open_is_announced_loudly(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        check_exposure(Settings(host="127.0.0.1", auth=False))
        check_exposure(Settings(host="0.0.0.0", auth=False, auth_allow_open=True))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("AUTHENTICATION IS OFF" in line for line in warnings)
    assert "INFERFLUX_AUTH_ALLOW_OPEN" in warnings[1]


def test_auth_on_is_quiet_anywhere(caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        check_exposure(Settings(host="0.0.0.0"))
    assert not caplog.records
