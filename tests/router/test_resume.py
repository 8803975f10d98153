"""Resume tokens and keyrings."""

from __future__ import annotations

import pytest

from inferflux.router.resume import KeyringError, KeyringFile, TokenError, parse_keyring, sign, verify

STREAM = "0123456789abcdef0123456789abcdef"
RING = parse_keyring("new=" + "n" * 32 + "\nold=" + "o" * 32)


def test_token_round_trips_with_kid_stream_and_offset() -> None:
    token = sign(RING, STREAM, 17, ttl=300, now=1000)
    assert token.split(".")[:4] == ["new", STREAM, "17", "1300"]
    assert verify(RING, token, now=1299) == (STREAM, 17)


def test_expired_token_is_410() -> None:
    token = sign(RING, STREAM, 1, ttl=300, now=1000)
    with pytest.raises(TokenError) as error:
        verify(RING, token, now=1301)
    assert error.value.status == 410


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(".17.", ".18."),  # another offset
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
        lambda t: t.replace("new.", "old.", 1),  # signed by new, claims old
        lambda t: t.replace("new.", "gone.", 1),  # a retired key
        lambda t: "not-a-token",
        lambda t: t + ".extra",
    ],
)
def test_tampered_or_unknown_key_tokens_are_401(tamper) -> None:
    token = sign(RING, STREAM, 17, ttl=300, now=1000)
    with pytest.raises(TokenError) as error:
        verify(RING, tamper(token), now=1001)
    assert error.value.status == 401


def test_old_key_tokens_verify_until_the_key_is_removed() -> None:
    before = parse_keyring("old=" + "o" * 32)
    token = sign(before, STREAM, 3, ttl=300, now=0)
    assert verify(RING, token, now=1) == (STREAM, 3)
    with pytest.raises(TokenError):
        verify(parse_keyring("new=" + "n" * 32), token, now=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no keys"), ("k1", "line 1"), ("bad kid=" + "x" * 20, "line 1"), ("# c\nk1=short", "line 2")],
)
def test_malformed_keyrings_name_the_line(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        parse_keyring(text)


def test_keyring_file_reloads_and_keeps_last_good_keys(tmp_path) -> None:
    path = tmp_path / "keys"
    path.write_text("a=" + "a" * 20)
    keys = KeyringFile(str(path))
    assert keys.keyring.signing[0] == "a"
    path.write_text("b=" + "b" * 20 + "\na=" + "a" * 20 + "\n")
    assert keys.reload() is not None
    assert keys.keyring.signing[0] == "b"
    path.write_text("broken")
    assert keys.reload() is None
    assert keys.keyring.signing[0] == "b"
