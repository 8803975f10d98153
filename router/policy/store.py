"""The policy store: tenants declared through the admin API, every API key record, tenant secrets.

One interface, `PolicyStore`, two implementations:
- `MemoryPolicyStore`: one router process (local mode, unit tests);
- `RedisPolicyStore`: every router replica shares one Redis, and each keeps its `PolicyHolder`
  current by following the store's change channel.

Every write is validated by the pydantic models of crds/policy.py before it is stored, and every
write lands in the local holder at once, so the replica that served an admin request reads its own
writes. Tenant secrets are kept here sealed (router/policy/secrets.py); they never enter the holder.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from inferflux.crds.policy import ApiKeyRecord, TenantPolicy
from inferflux.router.policy.effective import PolicyHolder

log = logging.getLogger("inferflux.router.policy.store")

Kind = Literal["tenant", "key"]
# Given the current record of a key, the records to write (the key itself first).
KeyChange = Callable[[ApiKeyRecord], list[ApiKeyRecord]]


class SealedSecret(BaseModel):
    """A tenant secret as stored: AES-GCM ciphertext, never the plaintext (router/policy/secrets.py)."""

    tenant: str
    name: str
    key_version: str
    nonce: str  # base64
    ciphertext: str  # base64, the GCM tag included
    updated_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def revoked(at: dt.datetime) -> KeyChange:
    """The change that revokes a key (a key revoked before keeps its first revocation time)."""
    return lambda record: [record if record.revoked_at else record.model_copy(update={"revoked_at": at})]


def rotated(new: ApiKeyRecord, expires_at: dt.datetime) -> KeyChange:
    """The change that replaces a key by ``new``: the old one expires at ``expires_at`` at the latest."""

    def change(record: ApiKeyRecord) -> list[ApiKeyRecord]:
        deadline = min(expires_at, record.expires_at) if record.expires_at else expires_at
        return [record.model_copy(update={"expires_at": deadline, "replaced_by": new.id}), new]

    return change


class PolicyStore(abc.ABC):
    """Stored tenants, keys and sealed secrets, mirrored into a `PolicyHolder`."""

    def __init__(self, holder: PolicyHolder) -> None:
        self.holder = holder

    # Reading --------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def tenants(self) -> list[TenantPolicy]:
        """Every stored tenant (resource-declared tenants are not stored; see `PolicyHolder`)."""

    @abc.abstractmethod
    async def get_tenant(self, name: str) -> TenantPolicy | None:
        """One stored tenant."""

    @abc.abstractmethod
    async def keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every key record, or those of one tenant."""

    @abc.abstractmethod
    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        """One key record."""

    # Writing --------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_tenant(self, tenant: TenantPolicy) -> None:
        """Create or replace a stored tenant."""

    @abc.abstractmethod
    async def delete_tenant(self, name: str) -> bool:
        """Delete a stored tenant; False when there was none."""

    @abc.abstractmethod
    async def put_key(self, record: ApiKeyRecord) -> None:
        """Create or replace a key record."""

    @abc.abstractmethod
    async def change_key(self, key_id: str, change: KeyChange) -> list[ApiKeyRecord] | None:
        """Apply ``change`` to a key atomically; the records written, or None when there is no such key."""

    async def revoke(self, key_id: str, at: dt.datetime | None = None) -> ApiKeyRecord | None:
        """Revoke a key now; its record afterwards, or None when there is no such key."""
        written = await self.change_key(key_id, revoked(at or _now()))
        return written[0] if written else None

    async def rotate(
        self, key_id: str, new: ApiKeyRecord, overlap: dt.timedelta, now: dt.datetime | None = None
    ) -> ApiKeyRecord | None:
        """Store ``new`` and let the old key live ``overlap`` longer; the old record, or None if absent."""
        written = await self.change_key(key_id, rotated(new, (now or _now()) + overlap))
        return written[0] if written else None

    # Tenant secrets (sealed) ----------------------------------------------------------------------
    @abc.abstractmethod
    async def put_secret(self, secret: SealedSecret) -> None:
        """Create or replace a sealed secret."""

    @abc.abstractmethod
    async def get_secret(self, tenant: str, name: str) -> SealedSecret | None:
        """One sealed secret."""

    @abc.abstractmethod
    async def secrets(self, tenant: str | None = None) -> list[SealedSecret]:
        """Every sealed secret, or those of one tenant."""

    @abc.abstractmethod
    async def delete_secret(self, tenant: str, name: str) -> bool:
        """Delete a sealed secret; False when there was none."""

    # Following ------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def load(self) -> None:
        """Load every stored tenant and key into the holder."""

    async def follow(self) -> None:  # noqa: B027 - optional: only shared stores have changes to follow
        """Keep the holder current until cancelled (a store only this process writes has nothing to do)."""

    async def close(self) -> None:  # noqa: B027 - optional: only stores with connections close them
        """Release connections."""


class MemoryPolicyStore(PolicyStore):
    """Dictionaries in this process: nothing survives a restart, and no other process sees them.

    Every write goes straight into the holder, which is all one router needs.
    """

    def __init__(self, holder: PolicyHolder) -> None:
        super().__init__(holder)
        self._tenants: dict[str, TenantPolicy] = {}
        self._keys: dict[str, ApiKeyRecord] = {}
        self._secrets: dict[tuple[str, str], SealedSecret] = {}

    async def tenants(self) -> list[TenantPolicy]:
        return list(self._tenants.values())

    async def get_tenant(self, name: str) -> TenantPolicy | None:
        return self._tenants.get(name)

    async def keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        return [key for key in self._keys.values() if tenant is None or key.tenant == tenant]

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    async def put_tenant(self, tenant: TenantPolicy) -> None:
        tenant = TenantPolicy.model_validate(tenant.model_dump())
        self._tenants[tenant.name] = tenant
        self.holder.put_tenant(tenant.name, tenant)

    async def delete_tenant(self, name: str) -> bool:
        found = self._tenants.pop(name, None) is not None
        self.holder.put_tenant(name, None)
        return found

    async def put_key(self, record: ApiKeyRecord) -> None:
        record = ApiKeyRecord.model_validate(record.model_dump())
        self._keys[record.id] = record
        self.holder.put_key(record.id, record)

    async def change_key(self, key_id: str, change: KeyChange) -> list[ApiKeyRecord] | None:
        current = self._keys.get(key_id)
        if current is None:
            return None
        written = [ApiKeyRecord.model_validate(record.model_dump()) for record in change(current)]
        for record in written:
            self._keys[record.id] = record
            self.holder.put_key(record.id, record)
        return written

    async def put_secret(self, secret: SealedSecret) -> None:
        self._secrets[(secret.tenant, secret.name)] = secret

    async def get_secret(self, tenant: str, name: str) -> SealedSecret | None:
        return self._secrets.get((tenant, name))

    async def secrets(self, tenant: str | None = None) -> list[SealedSecret]:
        return [secret for secret in self._secrets.values() if tenant is None or secret.tenant == tenant]

    async def delete_secret(self, tenant: str, name: str) -> bool:
        return self._secrets.pop((tenant, name), None) is not None

    async def load(self) -> None:
        self.holder.set_store(self._tenants.values(), self._keys.values())


def _dump(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


class RedisPolicyStore(PolicyStore):
    """Redis, shared by every router replica; the data lives (and survives restarts) in Redis.

    Layout under ``prefix`` (default ``inferflux:policy:``): hashes ``tenants`` (name → JSON),
    ``keys`` (key id → JSON) and ``secrets`` (``tenant/name`` → sealed JSON), a ``version`` counter,
    and the pub/sub channel ``changes``. Each write is one MULTI/EXEC transaction that writes the
    entry, increments the version and publishes ``{"kind", "id", "version"}``; read-modify-write
    operations (revoke, rotate) WATCH the keys hash and retry when it changed underneath.

    Each replica loads everything at start, re-reads the one entry each announcement names, and
    because pub/sub is at-most-once (a replica that was disconnected misses messages) reloads
    everything every ``resync_seconds`` and after every reconnect. A process keeps nothing of its
    own across a restart: it loads again from Redis.
    """

    def __init__(
        self,
        client: Any,
        holder: PolicyHolder,
        *,
        prefix: str = "inferflux:policy:",
        resync_seconds: float = 30.0,
        reconnect_seconds: float = 0.5,
    ) -> None:
        super().__init__(holder)
        self.client = client
        self.resync_seconds = resync_seconds
        self.reconnect_seconds = reconnect_seconds
        self.tenants_hash = f"{prefix}tenants"
        self.keys_hash = f"{prefix}keys"
        self.secrets_hash = f"{prefix}secrets"
        self.version_key = f"{prefix}version"
        self.channel = f"{prefix}changes"
        self.loads = 0  # full loads done, for tests and logs
        self._stale = False

    @classmethod
    def from_url(cls, url: str, holder: PolicyHolder, **options: Any) -> RedisPolicyStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        from redis.asyncio import Redis

        return cls(Redis.from_url(url), holder, **options)

    # Reading --------------------------------------------------------------------------------------
    async def tenants(self) -> list[TenantPolicy]:
        return [
            TenantPolicy.model_validate_json(raw)
            for raw in (await self.client.hgetall(self.tenants_hash)).values()
        ]

    async def get_tenant(self, name: str) -> TenantPolicy | None:
        raw = await self.client.hget(self.tenants_hash, name)
        return None if raw is None else TenantPolicy.model_validate_json(raw)

    async def keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        records = [
            ApiKeyRecord.model_validate_json(raw)
            for raw in (await self.client.hgetall(self.keys_hash)).values()
        ]
        return [record for record in records if tenant is None or record.tenant == tenant]

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        raw = await self.client.hget(self.keys_hash, key_id)
        return None if raw is None else ApiKeyRecord.model_validate_json(raw)

    # Writing --------------------------------------------------------------------------------------
    def _announce(self, pipe: Any, kind: Kind, entry: str) -> None:
        pipe.incr(self.version_key)
        pipe.publish(self.channel, orjson.dumps({"kind": kind, "id": entry}))

    async def put_tenant(self, tenant: TenantPolicy) -> None:
        tenant = TenantPolicy.model_validate(tenant.model_dump())
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.tenants_hash, tenant.name, _dump(tenant))
            self._announce(pipe, "tenant", tenant.name)
            await pipe.execute()
        self.holder.put_tenant(tenant.name, tenant)

    async def delete_tenant(self, name: str) -> bool:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.tenants_hash, name)
            self._announce(pipe, "tenant", name)
            deleted, *_ = await pipe.execute()
        self.holder.put_tenant(name, None)
        return bool(deleted)

    async def put_key(self, record: ApiKeyRecord) -> None:
        record = ApiKeyRecord.model_validate(record.model_dump())
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys_hash, record.id, _dump(record))
            self._announce(pipe, "key", record.id)
            await pipe.execute()
        self.holder.put_key(record.id, record)

    async def change_key(self, key_id: str, change: KeyChange) -> list[ApiKeyRecord] | None:
        from redis.exceptions import WatchError

        async with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.keys_hash)
                    raw = await pipe.hget(self.keys_hash, key_id)
                    if raw is None:
                        await pipe.unwatch()
                        return None
                    current = ApiKeyRecord.model_validate_json(raw)
                    written = [ApiKeyRecord.model_validate(r.model_dump()) for r in change(current)]
                    pipe.multi()
                    for record in written:
                        pipe.hset(self.keys_hash, record.id, _dump(record))
                        self._announce(pipe, "key", record.id)
                    await pipe.execute()
                    break
                except WatchError:  # another writer changed a key meanwhile: read again
                    continue
        for record in written:
            self.holder.put_key(record.id, record)
        return written

    # Tenant secrets -------------------------------------------------------------------------------
    async def put_secret(self, secret: SealedSecret) -> None:
        await self.client.hset(self.secrets_hash, f"{secret.tenant}/{secret.name}", _dump(secret))

    async def get_secret(self, tenant: str, name: str) -> SealedSecret | None:
        raw = await self.client.hget(self.secrets_hash, f"{tenant}/{name}")
        return None if raw is None else SealedSecret.model_validate_json(raw)

    async def secrets(self, tenant: str | None = None) -> list[SealedSecret]:
        found = [
            SealedSecret.model_validate_json(raw)
            for raw in (await self.client.hgetall(self.secrets_hash)).values()
        ]
        return [secret for secret in found if tenant is None or secret.tenant == tenant]

    async def delete_secret(self, tenant: str, name: str) -> bool:
        return bool(await self.client.hdel(self.secrets_hash, f"{tenant}/{name}"))

    # Following ------------------------------------------------------------------------------------
    async def load(self) -> None:
        """Read both hashes in one transaction (a consistent cut) and hand them to the holder whole."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.tenants_hash)
            pipe.hgetall(self.keys_hash)
            tenants_raw, keys_raw = await pipe.execute()
        tenants = _valid(TenantPolicy, tenants_raw.values())
        keys = _valid(ApiKeyRecord, keys_raw.values())
        self.holder.set_store(tenants, keys)
        self.loads += 1

    async def _apply(self, message: bytes) -> None:
        """Re-read the one entry an announcement names (the message carries no data to trust)."""
        try:
            change = orjson.loads(message)
            kind, entry = change["kind"], str(change["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed policy change announcement")
            return
        try:
            if kind == "tenant":
                self.holder.put_tenant(entry, await self.get_tenant(entry))
            elif kind == "key":
                self.holder.put_key(entry, await self.get_key(entry))
        except ValidationError:
            log.error("ignoring an invalid stored %s %s", kind, entry)

    async def follow(self) -> None:
        """Subscribe, load everything, apply announcements; reload periodically and after reconnects."""
        from redis.exceptions import RedisError

        loop = asyncio.get_running_loop()
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                # redis-py may reconnect (and resubscribe) on its own; what was announced meanwhile
                # is lost, so a reconnect marks the holder stale.
                pubsub.connection.register_connect_callback(self._reconnected)
                await self.load()  # after subscribing: nothing announced from here on is missed
                next_load = loop.time() + self.resync_seconds
                while True:
                    wait = max(0.0, min(next_load - loop.time(), 1.0))
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                    if message is not None and message.get("type") == "message":
                        await self._apply(message["data"])
                    if self._stale or loop.time() >= next_load:
                        self._stale = False
                        await self.load()
                        next_load = loop.time() + self.resync_seconds
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                log.warning("policy store connection lost (%s); reconnecting", type(error).__name__)
                await asyncio.sleep(self.reconnect_seconds)
            finally:
                await _quietly(pubsub.aclose())

    def _reconnected(self, connection: Any) -> None:
        self._stale = True

    async def close(self) -> None:
        await self.client.aclose()


def _valid(model: type[Any], raws: Any) -> list[Any]:
    """The entries that validate; a bad one is logged (never its content) and left out."""
    found = []
    for raw in raws:
        try:
            found.append(model.model_validate_json(raw))
        except ValidationError:
            log.error("ignoring an invalid stored %s", model.__name__)
    return found


async def _quietly(closing: Awaitable[Any]) -> None:
    try:
        await closing
    except Exception:  # closing a connection that is already gone
        log.debug("closing a policy store connection failed", exc_info=True)
