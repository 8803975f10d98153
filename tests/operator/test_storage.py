"""Storage's reading of API errors, against a stub API client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from inferflux.operator.storage import NamespaceTerminating, Storage

TERMINATING = (
    '{"kind":"Status","status":"Failure","message":"secrets \\"m-admin-token\\" is forbidden: unable to '
    'create new content in namespace team-a because it is being terminated","reason":"Forbidden",'
    '"details":{"causes":[{"reason":"NamespaceTerminating"}]},"code":403}'
)
RBAC_DENIED = '{"kind":"Status","message":"secrets is forbidden: User \\"x\\" cannot create","code":403}'


class StubApi:
    """Answers every call with one ApiException."""

    user_agent = ""

    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body

    async def call_api(self, *_: Any, **__: Any) -> Any:
        error = ApiException(status=self.status, reason="Forbidden")
        error.body = self.body
        raise error


def secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "m-admin-token", "namespace": "team-a"},
    }


async def test_a_write_into_a_terminating_namespace_is_its_own_error() -> None:
    storage = Storage(StubApi(403, TERMINATING))  # type: ignore[arg-type]
    with pytest.raises(NamespaceTerminating):
        await storage.create_if_missing(secret())


async def test_an_rbac_denial_stays_an_api_error() -> None:
    storage = Storage(StubApi(403, RBAC_DENIED))  # type: ignore[arg-type]
    with pytest.raises(ApiException) as raised:
        await storage.apply(secret())
    assert raised.value.status == 403
