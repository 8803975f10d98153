"""The seeds' own inference contract: request, answer and stream event payloads.

These pydantic models validate ``/api/v1/inference`` requests and are the source of the schemas
published in docs/openapi.yaml, so the document cannot drift from what the code accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class InferenceRequest(BaseModel):
    """A generation request: ``messages`` (chat) or ``prompt`` (plain completion), not both."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, description="Served model name, as listed by /v1/models.")
    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=131072)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = Field(default=None, max_length=4)
    seed: int | None = None
    prompt_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A managed prompt (`id` or `id@version`) put in front of `messages` as system text.",
    )
    variables: dict[str, Any] | None = Field(
        default=None, description="Values for the managed prompt's variables, checked against its schema."
    )

    @model_validator(mode="after")
    def _one_input(self) -> InferenceRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' or 'prompt'")
        if self.prompt_id is not None and self.messages is None:
            raise ValueError("'prompt_id' needs 'messages'")
        if self.variables is not None and self.prompt_id is None:
            raise ValueError("'variables' needs 'prompt_id'")
        return self


class ResumeRequest(BaseModel):
    """Reconnect to a stream: the last ``resume_token`` received."""

    model_config = ConfigDict(extra="forbid")
    resume_token: str = Field(min_length=1)


class Usage(BaseModel):
    """Token counts as the engine reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class InferenceResponse(BaseModel):
    """The whole answer of ``POST /api/v1/inference``."""

    id: str
    model: str
    output: str
    finish_reason: str | None = None
    usage: Usage | None = None


class DataEvent(BaseModel):
    """``event: data``: the next piece of output, at ``offset``, with a token resuming after it."""

    offset: int
    text: str
    resume_token: str


class ResumeEvent(BaseModel):
    """``event: resume``: sent first on every connection; resuming with its token replays from ``offset``."""

    stream_id: str
    offset: int
    resume_token: str


class HeartbeatEvent(BaseModel):
    """``event: heartbeat``: keeps proxies from closing an idle stream, with a fresh token."""

    offset: int
    resume_token: str


class DoneEvent(BaseModel):
    """``event: done``: the stream ended normally."""

    finish_reason: str | None = None
    usage: Usage | None = None


class ErrorDetail(BaseModel):
    """What went wrong, in the OpenAI error vocabulary."""

    message: str
    type: str
    param: str | None = None
    code: str


class ErrorEvent(BaseModel):
    """``event: error`` (and the body of every error response): the stream ended abnormally."""

    error: ErrorDetail
