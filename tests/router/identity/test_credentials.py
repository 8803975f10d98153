"""Where a credential is found, and which headers are refused before any parser sees them."""

from __future__ import annotations

import pytest

from inferflux.router.identity.credentials import MAX_CREDENTIAL_BYTES, presented
from inferflux.router.identity.failures import AuthFailure

KEY = "ifx_" + "a" * 16 + "_" + "B" * 43


def scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"headers": list(headers)}


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer " + KEY.encode())],
        [(b"authorization", b"bearer  " + KEY.encode())],
        [(b"x-api-key", KEY.encode())],
        [(b"sec-websocket-protocol", b"chat.v1, bearer." + KEY.encode())],
        [(b"authorization", b"Bearer " + KEY.encode()), (b"x-api-key", KEY.encode())],
    ],
    ids=["bearer", "scheme in any case", "x-api-key", "websocket subprotocol", "same key twice"],
)
def test_found(headers) -> None:
    assert presented(scope(*headers)) == KEY


def test_none() -> None:
    assert presented(scope((b"content-type", b"application/json"))) is None
    assert presented(scope((b"sec-websocket-protocol", b"chat.v1"))) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(b"authorization", b"Basic dXNlcjpwYXNz")], "scheme"),
        ([(b"authorization", b"Bearer")], "scheme"),
        ([(b"authorization", b"Bearer ")], "malformed"),
        ([(b"authorization", b"Bearer a b")], "malformed"),
        ([(b"authorization", "Bearer clé".encode())], "malformed"),
        ([(b"x-api-key", b"\x00\x01")], "malformed"),
        ([(b"authorization", b"Bearer " + b"a" * (MAX_CREDENTIAL_BYTES + 1))], "oversized"),
        ([(b"x-api-key", b"a" * 100_000)], "oversized"),
        ([(b"authorization", b"Bearer one"), (b"x-api-key", b"two")], "ambiguous"),
    ],
)
def test_refused(headers, reason) -> None:
    with pytest.raises(AuthFailure) as refused:
        presented(scope(*headers))
    assert refused.value.status == 401
    assert refused.value.reason == reason
