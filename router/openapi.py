"""The router's OpenAPI 3.1 document, generated from the contract models (docs/openapi.yaml).

``python -m inferflux.router.openapi`` rewrites docs/openapi.yaml; ``--check`` exits 1 when the file
drifted from the code, which a unit test also asserts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from inferflux.router.contract import (
    DataEvent,
    DoneEvent,
    ErrorEvent,
    HeartbeatEvent,
    InferenceRequest,
    InferenceResponse,
    ResumeEvent,
    ResumeRequest,
)
from inferflux.router.realtime.service import (
    SessionRequest,
    SessionTicket,
    VoiceStreamRequest,
    XrStreamRequest,
)

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
MODELS: list[type[BaseModel]] = [
    InferenceRequest,
    ResumeRequest,
    InferenceResponse,
    DataEvent,
    ResumeEvent,
    HeartbeatEvent,
    DoneEvent,
    ErrorEvent,
    # Realtime voice and XR (docs/realtime.md).
    SessionRequest,
    SessionTicket,
    VoiceStreamRequest,
    XrStreamRequest,
]


def ref(name: str) -> dict[str, str]:
    """A JSON reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


REASONS = {
    400: "Invalid request.",
    401: "Missing, malformed, forged, expired or revoked credential (WWW-Authenticate: Bearer "
    'error="invalid_token").',
    403: 'A valid credential without the route\'s scope or the model (error="insufficient_scope").',
    404: "Unknown model.",
    410: "Resume token expired, or the stream is no longer buffered.",
    413: "Request body too large.",
    429: "The model's queue is full; see the retry-after header.",
    502: "The upstream failed.",
    503: "No ready replica (after waiting INFERFLUX_HOLD_SECONDS for a loading model).",
    504: "The upstream did not answer in time.",
}
AUTH_STATUSES = (401, 403)


def errors(*statuses: int, schema: str = "ErrorEvent") -> dict[str, Any]:
    """Error responses in one error shape (OpenAI's by default)."""
    content = {"application/json": {"schema": ref(schema)}}
    return {str(status): {"description": REASONS[status], "content": content} for status in statuses}


ANTHROPIC_ERROR = {
    "type": "object",
    "description": "Anthropic's error body, which Anthropic SDKs parse.",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (ifx_...) or an OIDC JWT (docs/identity.md).",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "An API key."},
}
# Any one of the schemes; with INFERFLUX_AUTH=false none is needed. mTLS is not expressible here.
CREDENTIAL: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


STREAM_DESCRIPTION = """\
Server-sent events. Every connection opens with `resume`, then sends `data` events (SSE `id` is
the offset) and a `heartbeat` every INFERFLUX_HEARTBEAT_SECONDS (15 s by default), and ends with
`done` or `error`. Every `data` and `heartbeat` carries a `resume_token` (valid 5 minutes) that
resumes after it: POST `{"resume_token": ...}` to this path to continue with nothing lost and
nothing repeated."""

PASSTHROUGH = {
    "type": "object",
    "description": "An OpenAI API request; only `model` is read.",
    "required": ["model"],
    "properties": {"model": {"type": "string"}},
}


def openai_path(summary: str, error_schema: str = "ErrorEvent") -> dict[str, Any]:
    """One of the OpenAI-compatible routes, forwarded by ``model``."""
    return {
        "post": {
            "summary": summary,
            "tags": ["openai"],
            "parameters": [{"$ref": "#/components/parameters/RequestId"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": PASSTHROUGH}}},
            "responses": {
                "200": {
                    "description": "The upstream answer, JSON or (with stream: true) SSE, passed through.",
                    "content": {"application/json": {}, "text/event-stream": {}},
                },
                **errors(400, *AUTH_STATUSES, 404, 413, 429, 502, 503, 504, schema=error_schema),
            },
        }
    }


def plain(summary: str) -> dict[str, Any]:
    """An open GET endpoint (no credential, whatever the auth settings)."""
    responses = {"200": {"description": "OK"}}
    return {"get": {"summary": summary, "tags": ["operations"], "security": [], "responses": responses}}


def realtime_path(summary: str, request: str, answer: dict[str, Any], *statuses: int) -> dict[str, Any]:
    """A realtime POST route (docs/realtime.md); the WebSockets are not OpenAPI's to describe."""
    return {
        "post": {
            "summary": summary,
            "tags": ["realtime"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(request)}}},
            "responses": {"200": answer, **errors(400, *AUTH_STATUSES, 404, 413, *statuses)},
        }
    }


def realtime_paths() -> dict[str, Any]:
    """The realtime session and SSE routes."""
    ticket = {
        "description": "The session and a WebSocket ticket.",
        "content": {"application/json": {"schema": ref("SessionTicket")}},
    }
    events = {
        "description": "SSE: the events docs/realtime.md lists, with heartbeats.",
        "content": {"text/event-stream": {}},
    }
    return {
        "/api/v1/voice/session": realtime_path(
            "Create or re-admit a voice session; a ticket for WS /api/v1/voice/ws.",
            "SessionRequest",
            ticket,
            503,
        ),
        "/api/v1/xr/session": realtime_path(
            "Create or re-admit an XR session; a ticket for WS /api/v1/xr/ws.", "SessionRequest", ticket, 503
        ),
        "/api/v1/voice:stream": realtime_path(
            "A voice session's frames as SSE (text: a typed turn first).", "VoiceStreamRequest", events
        ),
        "/api/v1/xr:stream": realtime_path(
            "An answer fused with the XR session's spatial context, as SSE.",
            "XrStreamRequest",
            events,
            429,
            502,
            503,
        ),
    }


def build() -> dict[str, Any]:
    """The whole OpenAPI document."""
    _, defs = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas = defs["$defs"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "InferFlux router",
            "version": "1",
            "description": "OpenAI-compatible gateway and the resumable inference contract. Generated by "
            "`python -m inferflux.router.openapi`; do not edit by hand.",
        },
        "paths": {
            "/api/v1/inference": {
                "post": {
                    "summary": "Generate a whole answer.",
                    "tags": ["inference"],
                    "parameters": [{"$ref": "#/components/parameters/RequestId"}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("InferenceRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": "The answer.",
                            "content": {"application/json": {"schema": ref("InferenceResponse")}},
                        },
                        **errors(400, *AUTH_STATUSES, 404, 413, 429, 502, 503, 504),
                    },
                }
            },
            "/api/v1/inference:stream": {
                "post": {
                    "summary": "Stream an answer, or resume a stream with a resume token.",
                    "tags": ["inference"],
                    "parameters": [{"$ref": "#/components/parameters/RequestId"}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [ref("InferenceRequest"), ref("ResumeRequest")]}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": STREAM_DESCRIPTION,
                            "content": {
                                "text/event-stream": {
                                    "schema": {
                                        "oneOf": [
                                            ref(name)
                                            for name in (
                                                "ResumeEvent",
                                                "DataEvent",
                                                "HeartbeatEvent",
                                                "DoneEvent",
                                                "ErrorEvent",
                                            )
                                        ]
                                    }
                                }
                            },
                        },
                        **errors(400, *AUTH_STATUSES, 404, 410, 413, 429, 503),
                    },
                }
            },
            "/v1/chat/completions": openai_path("OpenAI chat completions, routed by model."),
            "/v1/completions": openai_path("OpenAI completions, routed by model."),
            "/v1/embeddings": openai_path("OpenAI embeddings, routed by model."),
            "/v1/messages": openai_path(
                "Anthropic Messages, answered through the model's fallback chain (see docs/providers.md).",
                error_schema="AnthropicError",
            ),
            "/v1/models": {
                "get": {
                    "summary": "The served models the caller may use.",
                    "tags": ["openai"],
                    "responses": {"200": {"description": "An OpenAI model list."}, **errors(*AUTH_STATUSES)},
                }
            },
            **realtime_paths(),
            "/healthz": plain("The process is up."),
            "/livez": plain("The event loop answers."),
            "/readyz": {
                "get": {
                    "summary": "Ready when every named check passes.",
                    "tags": ["operations"],
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "A check failed; the body lists them."},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, prefixed inferflux_router_; a credential with "
                    "models:read only when INFERFLUX_METRICS_AUTH=true.",
                    "tags": ["operations"],
                    "security": [{}, *CREDENTIAL],
                    "responses": {"200": {"description": "OK"}, **errors(*AUTH_STATUSES)},
                }
            },
        },
        "security": CREDENTIAL,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": {**schemas, "AnthropicError": ANTHROPIC_ERROR},
            "parameters": {
                "RequestId": {
                    "name": "x-request-id",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Propagated upstream and returned; generated when absent.",
                }
            },
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated parts out in full: anchors and aliases make the document hard to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: dict[str, Any]) -> str:
    """An OpenAPI document as YAML text, keys in their given order, nothing aliased."""
    return yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, width=100, allow_unicode=True)


def render() -> str:
    """The document as YAML text."""
    return to_yaml(build())


def write_or_check(document: Path, text: str, module: str, argv: list[str]) -> int:
    """Write ``text`` to ``document``, or with ``--check`` report (exit 1) that it drifted."""
    if "--check" in argv:
        if not document.exists() or document.read_text() != text:
            print(f"{document} is out of date; run python -m {module}", file=sys.stderr)
            return 1
        return 0
    document.write_text(text)
    return 0


def main(argv: list[str]) -> int:
    """Write docs/openapi.yaml, or with ``--check`` report drift."""
    return write_or_check(DOCUMENT, render(), "inferflux.router.openapi", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
