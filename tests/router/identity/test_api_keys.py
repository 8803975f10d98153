"""API-key verification against a policy: every refusal is the same 401, the reason differs."""

from __future__ import annotations

import datetime as dt

import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.identity import api_keys
from inferflux.router.identity.failures import AuthFailure
from inferflux.router.policy.effective import PolicyHolder

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HASHER = api_keys.KeyHasher(b"k" * 32)


def holder_with(tenant: TenantPolicy) -> PolicyHolder:
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants={tenant.name: tenant}))
    return holder


def issue(holder: PolicyHolder, **record: object) -> str:
    key, issued = api_keys.generate(HASHER, "alpha", now=NOW)
    holder.put_key(issued.id, issued.model_copy(update=record))
    return key


def test_a_key_narrows_its_tenant_and_never_widens_it() -> None:
    holder = holder_with(TenantPolicy(name="alpha", scopes=[Scope.INFERENCE], models=["a", "b"]))
    wide = issue(holder, scopes=[Scope.INFERENCE, Scope.ADMIN], models=["b", "c"])
    principal = api_keys.authenticate(holder.current, HASHER, wide, NOW)
    assert (principal.tenant, principal.kind) == ("alpha", "api_key")
    assert principal.subject == api_keys.key_id_of(wide)
    assert principal.scopes == {Scope.INFERENCE}
    assert principal.models == {"b"}
    plain_key = issue(holder)
    plain = api_keys.authenticate(holder.current, HASHER, plain_key, NOW)
    assert (plain.scopes, plain.models) == ({Scope.INFERENCE}, {"a", "b"})


def test_every_model_tenant_takes_the_keys_models() -> None:
    holder = holder_with(TenantPolicy(name="alpha"))
    every, narrow = issue(holder), issue(holder, models=["x"])
    assert api_keys.authenticate(holder.current, HASHER, every, NOW).models is None
    assert api_keys.authenticate(holder.current, HASHER, narrow, NOW).models == {"x"}


@pytest.mark.parametrize(
    ("record", "tenant", "reason"),
    [
        ({"revoked_at": NOW + dt.timedelta(days=1)}, {}, "revoked"),
        ({"expires_at": NOW}, {}, "expired"),
        ({"expires_at": NOW - dt.timedelta(seconds=1), "replaced_by": "b" * 16}, {}, "expired"),
        ({}, {"suspended": True}, "suspended"),
    ],
)
def test_refusals(record, tenant, reason) -> None:
    holder = holder_with(TenantPolicy(name="alpha", **tenant))
    key = issue(holder, **record)
    with pytest.raises(AuthFailure) as refused:
        api_keys.authenticate(holder.current, HASHER, key, NOW)
    assert (refused.value.status, refused.value.reason) == (401, reason)


def test_forged_and_foreign_keys() -> None:
    holder = holder_with(TenantPolicy(name="alpha"))
    key = issue(holder)
    other_secret = api_keys.KeyHasher(b"x" * 32)
    for candidate, hasher, reason in (
        (key[:-1] + ("A" if key[-1] != "A" else "B"), HASHER, "bad_key"),
        (key, other_secret, "bad_key"),
        ("ifx_" + "a" * 16 + "_" + "b" * 43, HASHER, "unknown_key"),
        ("sk-not-ours", HASHER, "malformed"),
    ):
        with pytest.raises(AuthFailure) as refused:
            api_keys.authenticate(holder.current, hasher, candidate, NOW)
        assert refused.value.reason == reason


def test_the_hashing_secret_comes_from_its_file(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"z" * 40 + b"\n")
    key, record = api_keys.generate(api_keys.load_hasher(str(secret)), "alpha")
    assert api_keys.load_hasher(str(secret)).matches(key, record)
    assert not api_keys.load_hasher("").matches(key, record)  # no file: a random secret
    secret.write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        api_keys.load_hasher(str(secret))
