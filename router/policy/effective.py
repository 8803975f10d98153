"""The effective policy: one immutable value per change, swapped whole, read without locks.

It merges the operator's `PolicySnapshot` (tenants declared by resources) with the policy store's
tenants and keys. A request reads ``holder.current`` once and sees one consistent policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inferflux.crds.policy import ApiKeyRecord, PolicySnapshot, PolicySource, TenantPolicy


@dataclass(frozen=True)
class Policy:
    """Tenants by name, keys by id, and certificate subjects to tenant names."""

    tenants: Mapping[str, TenantPolicy] = field(default_factory=dict)
    keys: Mapping[str, ApiKeyRecord] = field(default_factory=dict)
    subjects: Mapping[str, str] = field(default_factory=dict)
    generation: int = 0


def merge(
    snapshot: PolicySnapshot,
    stored_tenants: Iterable[TenantPolicy],
    stored_keys: Iterable[ApiKeyRecord],
    generation: int = 0,
) -> Policy:
    """The effective policy: resource tenants win over stored ones of the same name."""
    tenants = {tenant.name: tenant for tenant in stored_tenants}
    for name, tenant in snapshot.tenants.items():
        tenants[name] = tenant.model_copy(update={"source": PolicySource.RESOURCE})
    subjects = {subject: name for name, tenant in tenants.items() for subject in tenant.certificate_subjects}
    return Policy(
        tenants=MappingProxyType(tenants),
        keys=MappingProxyType({key.id: key for key in stored_keys}),
        subjects=MappingProxyType(subjects),
        generation=generation,
    )


class PolicyHolder:
    """The current `Policy` and its two inputs; any input change rebuilds and swaps it."""

    def __init__(self) -> None:
        self.current = Policy()
        self.snapshot = PolicySnapshot()
        self.stored_tenants: dict[str, TenantPolicy] = {}
        self.stored_keys: dict[str, ApiKeyRecord] = {}
        self.snapshot_loaded = False
        self.store_loaded = False
        self._listeners: list[Callable[[Policy], None]] = []

    def _rebuild(self) -> None:
        self.current = merge(
            self.snapshot,
            self.stored_tenants.values(),
            self.stored_keys.values(),
            self.current.generation + 1,
        )
        for listener in self._listeners:
            listener(self.current)

    def set_snapshot(self, snapshot: PolicySnapshot) -> None:
        """The operator published a new snapshot (or local mode read the Tenant files)."""
        self.snapshot = snapshot
        self.snapshot_loaded = True
        self._rebuild()

    def set_store(self, tenants: Iterable[TenantPolicy], keys: Iterable[ApiKeyRecord]) -> None:
        """The whole content of the policy store (at start, and on every resync)."""
        self.stored_tenants = {tenant.name: tenant for tenant in tenants}
        self.stored_keys = {key.id: key for key in keys}
        self.store_loaded = True
        self._rebuild()

    def put_tenant(self, name: str, tenant: TenantPolicy | None) -> None:
        """One stored tenant changed (None: deleted)."""
        if tenant is None:
            self.stored_tenants.pop(name, None)
        else:
            self.stored_tenants[name] = tenant
        self._rebuild()

    def put_key(self, key_id: str, record: ApiKeyRecord | None) -> None:
        """One stored key changed (None: deleted)."""
        if record is None:
            self.stored_keys.pop(key_id, None)
        else:
            self.stored_keys[key_id] = record
        self._rebuild()

    def on_change(self, listener: Callable[[Policy], None]) -> None:
        """Call ``listener`` with every new policy."""
        self._listeners.append(listener)
