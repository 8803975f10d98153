"""docs/openapi.yaml: current with the code, and describing what the router really sends."""

from __future__ import annotations

import jsonschema
import orjson
import yaml

from inferflux.router import openapi
from inferflux.router.app import Router
from inferflux.router.settings import Settings


def load() -> dict:
    return yaml.safe_load(openapi.DOCUMENT.read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    document = load()
    schema = {**document["components"]["schemas"][name], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_document_has_not_drifted_from_the_code() -> None:
    assert openapi.DOCUMENT.read_text() == openapi.render(), "run: python -m inferflux.router.openapi"
    assert openapi.main(["--check"]) == 0


def test_every_served_route_is_documented() -> None:
    assert {path for _, path in Router(Settings()).routes} == set(load()["paths"])


async def test_real_stream_events_and_errors_match_their_schemas(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    body = {"model": "m", "prompt": "x", "max_tokens": 3}
    async with harness.post("/api/v1/inference:stream", body) as response:
        raw = await response.read()
    names = {"resume": "ResumeEvent", "data": "DataEvent", "heartbeat": "HeartbeatEvent", "done": "DoneEvent"}
    seen = set()
    for block in raw.split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"event" in lines:
            event = lines[b"event"].decode()
            validator(names[event]).validate(orjson.loads(lines[b"data"]))
            seen.add(event)
    assert seen == {"resume", "data", "done"}
    async with harness.post("/api/v1/inference", body) as response:
        validator("InferenceResponse").validate(await response.json())
    async with harness.post("/api/v1/inference", {"model": "nope", "prompt": "x"}) as response:
        validator("ErrorEvent").validate(await response.json())
    validator("InferenceRequest").validate(body)
    assert not validator("InferenceRequest").is_valid({"model": "m", "prompt": "x", "bogus": 1})


async def test_error_bodies_match_the_documented_shape_of_their_route(make_router, route) -> None:
    document = load()
    harness = await make_router({"m": route([])}, hold_seconds=0.0)
    async with harness.post("/v1/messages", {"model": "nope", "max_tokens": 5, "messages": []}) as response:
        body = await response.json()
    status = str(response.status)
    documented = document["paths"]["/v1/messages"]["post"]["responses"][status]
    assert documented["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnthropicError"
    }
    validator("AnthropicError").validate(body)
    assert not validator("ErrorEvent").is_valid(body), "Anthropic clients get Anthropic's shape"

    guarded = await make_router({"m": route([])}, auth=True)
    for path in ("/v1/chat/completions", "/api/v1/inference", "/v1/messages"):
        async with guarded.post(path, {"model": "m"}) as response:
            assert response.status == 401
            body = await response.json()
        schema = document["paths"][path]["post"]["responses"]["401"]["content"]["application/json"]["schema"]
        validator(schema["$ref"].rsplit("/", 1)[1]).validate(body)
    async with guarded.session.get(guarded.url + "/readyz") as response:
        assert response.status in (200, 503), "health probes stay open"
    assert document["paths"]["/readyz"]["get"]["security"] == []
