"""The Service and the admin-token Secret."""

from __future__ import annotations

from inferflux.operator.render.labels import selector_labels
from inferflux.operator.render.service import (
    endpoint_url,
    new_admin_token,
    render_admin_secret,
    render_service,
)
from tests.operator.conftest import ModelFactory


def test_service_selects_every_revision_on_the_http_port(model: ModelFactory) -> None:
    m = model()
    service = render_service(m)
    assert service["metadata"]["ownerReferences"][0]["kind"] == "InferenceModel"
    assert service["spec"]["selector"] == selector_labels(m)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert endpoint_url(m) == "http://gemma3-270m.team-a.svc:8080"


def test_admin_tokens_are_random_and_owned(model: ModelFactory) -> None:
    first, second = new_admin_token(), new_admin_token()
    assert first != second
    assert len(first) >= 40
    secret = render_admin_secret(model(), first)
    assert secret["metadata"]["name"] == "gemma3-270m-admin-token"
    assert secret["metadata"]["ownerReferences"][0]["name"] == "gemma3-270m"
    assert secret["stringData"] == {"token": first}
