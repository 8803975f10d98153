"""What the sync and async clients share: headers, request bodies, and turning answers into errors."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from inferflux.client.errors import APIError, error_from, retry_after_seconds

INFERENCE_PATH = "/api/v1/inference"
USER_AGENT = "inferflux-python"


def headers(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Default headers: the bearer credential when given, and a user agent."""
    out = {"user-agent": USER_AGENT}
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    out.update(extra or {})
    return out


def request_id() -> str:
    """A fresh ``x-request-id``: one per call, kept across its retries and resumes so logs correlate."""
    return secrets.token_hex(16)


def inference_body(
    model: str,
    messages: Sequence[Mapping[str, str]] | None,
    prompt: str | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The request document; options left as None are not sent (the router's defaults apply)."""
    body: dict[str, Any] = {"model": model}
    if messages is not None:
        body["messages"] = [dict(message) for message in messages]
    if prompt is not None:
        body["prompt"] = prompt
    body.update({name: value for name, value in options.items() if value is not None})
    return body


def timeout(connect: float, stall: float) -> httpx.Timeout:
    """Connect within ``connect``; any read silent for ``stall`` seconds fails (a stalled connection)."""
    return httpx.Timeout(connect=connect, read=stall, write=connect, pool=connect)


def api_error(response: httpx.Response, *, resuming: bool = False) -> APIError:
    """The typed error for an error answer whose body has been read."""
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        document = None
    return error_from(
        response.status_code,
        document,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        request_id=response.headers.get("x-request-id"),
        resuming=resuming,
    )
