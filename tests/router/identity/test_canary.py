"""Nothing the router writes — logs at DEBUG, metrics, error bodies — contains a key, a token or a
prompt: a recognisable canary key, token and prompt go through, accepted and refused, then
everything is grepped for them."""

from __future__ import annotations

import logging

from inferflux.crds.tenant import Scope

PROMPT = "CANARY-PROMPT-9d1f4e the secret recipe"


async def test_no_key_token_or_prompt_in_anything_the_router_writes(make_identity, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    identity = await make_identity()
    harness = identity.harness
    key = identity.key()
    revoked = identity.key(revoked_at=identity.record(key).created_at)
    narrow = identity.key(scopes=[Scope.MODELS_READ])
    token = identity.token(scope="inference")
    forged = key[:-6] + "CANARY"
    secrets = [key, revoked, narrow, token, forged, PROMPT]
    bodies: list[bytes] = []
    for credential, model, expected in (
        (key, "a", 200),
        (token, "a", 200),
        (key, "b", 403),
        (narrow, "a", 403),
        (revoked, "a", 401),
        (forged, "a", 401),
        (token + "x", "a", 401),
    ):
        document = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 2}
        headers = {"authorization": f"Bearer {credential}"}
        async with harness.post("/v1/chat/completions", document, headers=headers) as response:
            assert response.status == expected
            bodies.append(await response.read())
            bodies.append(str(response.headers).encode())
    async with harness.session.get(harness.url + "/metrics") as response:
        metrics = await response.read()
    assert b'reason="revoked"' in metrics  # the refusals were counted ...
    written = [*bodies, metrics, caplog.text.encode(), *(r.getMessage().encode() for r in caplog.records)]
    for secret in secrets:
        for part in (secret, secret[21:] if secret.startswith("ifx_") else secret):
            assert not any(part.encode() in blob for blob in written), "a secret leaked"  # ... nothing else
