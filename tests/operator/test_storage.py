"""Storage's reading of API errors, against a stub API client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from inferflux.operator.factory import quiet_in_terminating_namespaces
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


async def test_a_reconcile_in_a_terminating_namespace_ends_without_a_retry() -> None:
    async def refused(key: tuple[str, str]) -> float:
        raise NamespaceTerminating("/api/v1/namespaces/team-a/secrets")

    async def denied(key: tuple[str, str]) -> float:
        raise ApiException(status=403, reason="Forbidden")

    assert await quiet_in_terminating_namespaces(refused)(("team-a", "m")) is None
    with pytest.raises(ApiException):
        await quiet_in_terminating_namespaces(denied)(("team-a", "m"))
