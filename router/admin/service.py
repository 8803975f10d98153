"""What the admin API does, independent of HTTP: checks, then one store operation each.

Reads come from the `PolicyHolder` (the policy this replica enforces, resource tenants included);
writes go to the `PolicyStore`, which updates the holder of this replica at once and of the others
through its change channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from inferflux.crds.policy import ApiKeyRecord, PolicySource, TenantPolicy
from inferflux.crds.tenant import ANY_MODEL
from inferflux.router.admin.models import (
    KeyCreate,
    KeyCreated,
    KeyView,
    PolicySummary,
    Resealed,
    SecretView,
    TenantBody,
    TenantUsage,
)
from inferflux.router.admin.usage import usage_off, usage_view
from inferflux.router.budgets.ledger import Ledger, LedgerUnavailable, Limits, ScopeLimits
from inferflux.router.budgets.stage import PricingHolder, scope_limits
from inferflux.router.identity.api_keys import KeyHasher, generate
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.secrets import Keyring, SecretError
from inferflux.router.policy.store import PolicyStore


class AdminError(Exception):
    """A refused admin operation: HTTP status, OpenAI error code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> AdminError:
    return AdminError(404, "not_found", f"{what} not found")


def key_is_active(record: ApiKeyRecord, now: dt.datetime) -> bool:
    """Neither revoked nor past its expiry."""
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > now)


def _new_key(
    hasher: KeyHasher, tenant: str, like: KeyCreate | ApiKeyRecord, now: dt.datetime
) -> tuple[str, ApiKeyRecord]:
    """A new key with the name, scopes, models, expiry and limits of ``like`` (a request, or the key
    it rotates)."""
    key, record = generate(
        hasher,
        tenant,
        name=like.name,
        scopes=like.scopes,
        models=like.models,
        expires_at=like.expires_at,
        now=now,
    )
    return key, record.model_copy(update={"budget": like.budget, "rate_limits": like.rate_limits})


class AdminService:
    """Tenants, keys and tenant secrets, for the admin API and nothing else."""

    def __init__(
        self,
        holder: PolicyHolder,
        store: PolicyStore,
        hasher: KeyHasher | None,
        keyring: Keyring | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        *,
        ledger: Ledger | None = None,
        pricing: PricingHolder | None = None,
    ) -> None:
        self.holder = holder
        self.store = store
        self.hasher = hasher
        self.keyring = keyring
        self.clock = clock
        self.ledger = ledger  # None: budgets are off on this router (no Redis)
        self.pricing = pricing

    # Tenants --------------------------------------------------------------------------------------
    def tenants(self) -> list[TenantPolicy]:
        return sorted(self.holder.current.tenants.values(), key=lambda tenant: tenant.name)

    def tenant(self, name: str) -> TenantPolicy:
        found = self.holder.current.tenants.get(name)
        if found is None:
            raise not_found(f"tenant {name!r}")
        return found

    def _writable(self, name: str) -> None:
        found = self.holder.current.tenants.get(name)
        if found is not None and found.source == PolicySource.RESOURCE:
            raise AdminError(
                409,
                "conflict",
                f"tenant {name!r} is declared by a Tenant resource; "
                "change the resource (in Git), not the admin API",
            )

    async def put_tenant(self, name: str, body: TenantBody) -> TenantPolicy:
        self._writable(name)
        tenant = TenantPolicy(name=name, source=PolicySource.ADMIN, **body.model_dump())
        await self.store.put_tenant(tenant)
        return tenant

    async def delete_tenant(self, name: str) -> None:
        """Delete a stored tenant and revoke its keys (so recreating the name does not revive them)."""
        self._writable(name)
        if not await self.store.delete_tenant(name):
            raise not_found(f"tenant {name!r}")
        now = self.clock()
        for record in await self.store.keys(name):
            if record.revoked_at is None:
                await self.store.revoke(record.id, now)

    async def usage(self, name: str) -> TenantUsage:
        """The tenant's spend per window and rate-limit use now, read from the ledger (two reads,
        neither of which takes a request slot or counts a token)."""
        tenant = self.tenant(name)
        now = self.clock()
        if self.ledger is None or self.pricing is None:
            return usage_off(tenant.name, now)
        limits = Limits(scope_limits(tenant.budget, tenant.rate_limits) or ScopeLimits())
        try:
            spend = await self.ledger.spend(tenant.name, None, limits)
            rates = await self.ledger.rates(tenant.name, None, limits)
        except LedgerUnavailable:
            raise AdminError(
                503, "ledger_unavailable", "the budget ledger (Redis) cannot be read now; try again"
            ) from None
        return usage_view(tenant, spend, rates, self.pricing.current, now)

    # Keys -----------------------------------------------------------------------------------------
    def _hasher(self) -> KeyHasher:
        if self.hasher is None:
            raise AdminError(
                503, "unavailable", "API keys need the hashing secret: set INFERFLUX_AUTH_SECRET_FILE"
            )
        return self.hasher

    def _within_tenant(self, tenant: TenantPolicy, body: KeyCreate) -> None:
        """A key narrows its tenant's rights; asking for more is an error now, not a surprise later."""
        extra_scopes = set(body.scopes or ()) - set(tenant.scopes)
        if extra_scopes:
            raise AdminError(
                400,
                "invalid_request_error",
                f"scopes not granted to tenant {tenant.name!r}: {sorted(extra_scopes)}",
            )
        if ANY_MODEL not in tenant.models:
            extra_models = set(body.models or ()) - set(tenant.models)
            if extra_models:
                raise AdminError(
                    400,
                    "invalid_request_error",
                    f"models not granted to tenant {tenant.name!r}: {sorted(extra_models)}",
                )

    async def create_key(self, tenant_name: str, body: KeyCreate) -> KeyCreated:
        hasher = self._hasher()
        tenant = self.tenant(tenant_name)
        self._within_tenant(tenant, body)
        now = self.clock()
        if body.expires_at is not None and body.expires_at <= now:
            raise AdminError(400, "invalid_request_error", "expiresAt is in the past")
        key, record = _new_key(hasher, tenant.name, body, now)
        await self.store.put_key(record)
        return KeyCreated(key=key, record=KeyView.of(record))

    def keys(self, tenant_name: str) -> list[KeyView]:
        self.tenant(tenant_name)
        records = [record for record in self.holder.current.keys.values() if record.tenant == tenant_name]
        return [KeyView.of(record) for record in sorted(records, key=lambda record: record.created_at)]

    def key(self, key_id: str) -> KeyView:
        record = self.holder.current.keys.get(key_id)
        if record is None:
            raise not_found(f"key {key_id!r}")
        return KeyView.of(record)

    async def revoke_key(self, key_id: str) -> KeyView:
        record = await self.store.revoke(key_id, self.clock())
        if record is None:
            raise not_found(f"key {key_id!r}")
        return KeyView.of(record)

    async def rotate_key(self, key_id: str, overlap_seconds: int) -> KeyCreated:
        hasher = self._hasher()
        old = self.holder.current.keys.get(key_id) or await self.store.get_key(key_id)
        if old is None:
            raise not_found(f"key {key_id!r}")
        now = self.clock()
        if not key_is_active(old, now):
            raise AdminError(
                409, "conflict", f"key {key_id!r} is revoked or expired; create a new key instead"
            )
        key, record = _new_key(hasher, old.tenant, old, now)
        previous = await self.store.rotate(key_id, record, dt.timedelta(seconds=overlap_seconds), now)
        if previous is None:
            raise not_found(f"key {key_id!r}")
        return KeyCreated(key=key, record=KeyView.of(record), previous=KeyView.of(previous))

    # Tenant secrets -------------------------------------------------------------------------------
    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise AdminError(
                503, "unavailable", "tenant secrets need a key-encryption key: set INFERFLUX_KEK_FILE"
            )
        return self.keyring

    async def put_secret(self, tenant_name: str, name: str, value: str) -> SecretView:
        keyring = self._keyring()
        self.tenant(tenant_name)
        sealed = keyring.seal(tenant_name, name, value.encode(), self.clock())
        await self.store.put_secret(sealed)
        return SecretView.model_validate(
            sealed.model_dump(include={"tenant", "name", "key_version", "updated_at"})
        )

    async def secrets(self, tenant_name: str) -> list[SecretView]:
        self.tenant(tenant_name)
        found = sorted(await self.store.secrets(tenant_name), key=lambda secret: secret.name)
        return [
            SecretView.model_validate(
                secret.model_dump(include={"tenant", "name", "key_version", "updated_at"})
            )
            for secret in found
        ]

    async def delete_secret(self, tenant_name: str, name: str) -> None:
        if not await self.store.delete_secret(tenant_name, name):
            raise not_found(f"secret {name!r} of tenant {tenant_name!r}")

    async def reseal_secrets(self) -> Resealed:
        """Re-encrypt every secret sealed with an older key version under the current one."""
        keyring = self._keyring()
        count = 0
        for sealed in await self.store.secrets():
            try:
                fresh = keyring.reseal(sealed)
            except SecretError as error:
                raise AdminError(409, "conflict", str(error)) from None
            if fresh is not None:
                await self.store.put_secret(fresh)
                count += 1
        return Resealed(resealed=count, key_version=keyring.current)

    # Summary --------------------------------------------------------------------------------------
    def summary(self) -> PolicySummary:
        policy = self.holder.current
        now = self.clock()
        resource = sum(1 for tenant in policy.tenants.values() if tenant.source == PolicySource.RESOURCE)
        return PolicySummary(
            generation=policy.generation,
            tenants=len(policy.tenants),
            resource_tenants=resource,
            admin_tenants=len(policy.tenants) - resource,
            keys=len(policy.keys),
            active_keys=sum(1 for record in policy.keys.values() if key_is_active(record, now)),
            snapshot_loaded=self.holder.snapshot_loaded,
            store_loaded=self.holder.store_loaded,
        )
