"""The per-tenant audit policy: how long the router keeps a tenant's audit records, and whether the
prompt text itself (after the PII filter's redaction) is kept besides its keyed hash.

Every request leaves an audit record whatever this says (docs/audit.md); the policy only chooses
the retention window and whether the record may carry text.
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import Field

from inferflux.crds.meta import KubeModel


class RetentionDays(IntEnum):
    """The retention windows a tenant may choose, in days."""

    DAYS_30 = 30
    DAYS_90 = 90
    DAYS_180 = 180


DEFAULT_RETENTION = RetentionDays.DAYS_90


class AuditPolicy(KubeModel):
    """What the router's audit log keeps for one tenant."""

    retention_days: RetentionDays = Field(
        default=DEFAULT_RETENTION,
        description="Days the tenant's audit records are kept (30, 90 or 180). Segments are pruned whole, "
        "once every record in them is past its own tenant's window, so a record may outlive its window.",
    )
    record_prompts: bool = Field(
        default=False,
        description="Keep the prompt text, redacted by the PII filter, in the audit record. Off: only an "
        "HMAC-SHA-256 of the prompt under a key derived for this tenant.",
    )
