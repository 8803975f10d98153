"""Per-tenant guardrails: what the router does with personal data, injection attempts and topics.

A tenant's `GuardrailPolicy` says, for each type of personal data (e-mail, phone, payment card,
IBAN, national id, IP address, secret), whether the router lets it pass unscanned (``allow``),
counts it and lets it pass (``detect``), replaces it with a typed placeholder such as ``[EMAIL]``
(``redact``), or refuses the request (``block``). The same actions apply to the answer unless
``output`` is false. The policy also caps the size of the input, names topics the tenant refuses, and
says how the anti-injection rules treat user text.

The defaults redact payment cards and secrets (a prompt rarely needs them, and a leaked key or card
number is costly) and let the other types pass unscanned, so that a tenant with no policy keeps the
text it sends; docs/guardrails.md explains the choice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from inferflux.crds.meta import KubeModel

TOPIC_NAME = r"^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$"
REGION = r"^[A-Z]{2}$"
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL")

Region = Annotated[str, Field(pattern=REGION)]
Term = Annotated[str, Field(min_length=1, max_length=256)]


class EntityType(StrEnum):
    """A type of personal data or secret the PII filter finds."""

    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IBAN = "iban"
    NATIONAL_ID = "national_id"
    IP_ADDRESS = "ip_address"
    SECRET = "secret"  # noqa: S105 - the name of a type, not a secret


class PiiAction(StrEnum):
    """What the router does with one type of entity."""

    ALLOW = "allow"  # not scanned at all
    DETECT = "detect"  # found and counted, passed through unchanged
    REDACT = "redact"  # replaced with a typed placeholder, e.g. [EMAIL]
    BLOCK = "block"  # the request (or the answer) is refused


class InjectionAction(StrEnum):
    """How the anti-injection rules (inferflux.prompts, injection_rules.yaml) treat user text."""

    ALLOW = "allow"  # not checked
    SANITISE = "sanitise"  # matched spans removed; refused when several distinct rules match
    BLOCK = "block"  # refused as soon as one rule matches


def _action(default: PiiAction, what: str) -> PiiAction:
    return Field(default=default, description=f"What to do with {what}: allow, detect, redact or block.")


class PiiActions(KubeModel):
    """One action per type of entity."""

    email: PiiAction = _action(PiiAction.ALLOW, "e-mail addresses")
    phone: PiiAction = _action(PiiAction.ALLOW, "phone numbers")
    card: PiiAction = _action(PiiAction.REDACT, "payment card numbers (Luhn-valid)")
    iban: PiiAction = _action(PiiAction.ALLOW, "IBANs (checksum-valid)")
    national_id: PiiAction = _action(
        PiiAction.ALLOW,
        "national ids (US SSN, UK NINO, DE tax id, FR NIR, ES DNI/NIE, IT codice fiscale, NL BSN)",
    )
    ip_address: PiiAction = _action(PiiAction.ALLOW, "IPv4 and IPv6 addresses")
    secret: PiiAction = _action(
        PiiAction.REDACT, "secrets (known API key formats, private-key blocks, high-entropy tokens)"
    )

    def of(self, entity: EntityType) -> PiiAction:
        """The action for ``entity``."""
        return PiiAction(getattr(self, entity.value))


class DeniedTopic(KubeModel):
    """A topic the tenant refuses: a request whose user text mentions any of its terms is blocked."""

    name: str = Field(pattern=TOPIC_NAME, description="Named in the error and in metrics; never a term.")
    terms: list[Term] = Field(
        min_length=1,
        max_length=128,
        description="Words or phrases, matched case-insensitively on whole words (Unicode look-alikes "
        "folded).",
    )


class GuardrailPolicy(KubeModel):
    """A tenant's guardrails on the router's request path."""

    pii: PiiActions = Field(default_factory=PiiActions)
    output: bool = Field(
        default=True,
        description="Apply the PII actions to answers as well, streamed ones through a short hold-back.",
    )
    phone_regions: list[Region] = Field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS),
        max_length=32,
        description="Regions (ISO 3166 alpha-2) whose national phone formats are recognised; numbers "
        "written with + or 00 are recognised for every region.",
    )
    injection: InjectionAction = Field(
        default=InjectionAction.SANITISE,
        description="How the anti-injection rules treat user and tool messages: allow, sanitise or block.",
    )
    max_input_chars: int | None = Field(
        default=None,
        ge=1,
        le=16 * 1024 * 1024,
        description="Largest input, in characters of message text, prompt and input; larger requests "
        "get 413. Unset: only the router's body limit applies.",
    )
    denied_topics: list[DeniedTopic] = Field(default_factory=list, max_length=64)
