"""The per-tenant guardrail policy type."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferflux.crds.guardrails import EntityType, GuardrailPolicy, PiiAction
from inferflux.crds.policy import TenantPolicy
from inferflux.crds.tenant import Tenant


def test_defaults_redact_cards_and_secrets_only() -> None:
    policy = GuardrailPolicy()
    redacted = {entity for entity in EntityType if policy.pii.of(entity) is PiiAction.REDACT}
    assert redacted == {EntityType.CARD, EntityType.SECRET}
    assert policy.output
    assert policy.injection == "sanitise"
    assert policy.max_input_chars is None


def test_a_tenant_carries_its_guardrails_in_camel_case() -> None:
    tenant = Tenant.from_body(
        {
            "metadata": {"name": "team-a"},
            "spec": {
                "guardrails": {
                    "pii": {"nationalId": "block"},
                    "maxInputChars": 5000,
                    "deniedTopics": [{"name": "weapons", "terms": ["pipe bomb"]}],
                }
            },
        }
    )
    guardrails = tenant.spec.guardrails
    assert guardrails.pii.of(EntityType.NATIONAL_ID) is PiiAction.BLOCK
    assert guardrails.pii.of(EntityType.CARD) is PiiAction.REDACT
    assert guardrails.max_input_chars == 5000
    assert TenantPolicy(name="team-a").guardrails == GuardrailPolicy()


@pytest.mark.parametrize(
    "guardrails",
    [
        {"pii": {"email": "hide"}},
        {"pii": {"creditCard": "block"}},
        {"phoneRegions": ["de"]},
        {"maxInputChars": 0},
        {"injection": "ignore"},
        {"deniedTopics": [{"name": "Bad Name", "terms": ["x"]}]},
        {"deniedTopics": [{"name": "empty", "terms": []}]},
    ],
)
def test_invalid_policies_are_refused(guardrails: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GuardrailPolicy.model_validate(guardrails)


def test_the_admin_api_takes_guardrails_for_its_tenants() -> None:
    from inferflux.crds.policy import PolicySource
    from inferflux.router.admin.models import TenantBody

    body = TenantBody.model_validate({"guardrails": {"pii": {"email": "block"}}})
    tenant = TenantPolicy(name="team-b", source=PolicySource.ADMIN, **body.model_dump())
    assert tenant.guardrails.pii.of(EntityType.EMAIL) is PiiAction.BLOCK
    assert TenantBody().guardrails == GuardrailPolicy()
