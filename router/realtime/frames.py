"""The frames of the seeds' realtime contract (S6f), as pydantic models.

Client to server, voice: ``{type: "audio"|"control", codec, seq, payload, ts}``; audio payloads
are base64 PCM16 little-endian mono at 16 kHz. Control payloads carry an ``action``:
``end_of_utterance`` (push-to-talk: the user stopped), ``text`` (a typed turn, ``text``), ``cancel``
(stop the answer) and ``bye`` (end the session). Client to server, XR: ``{type: "pose"|"gaze"|
"gesture"|"voice_vad", data, ts}``.

Server to client: ``{type: "partial"|"final"|"barge_in"|"metrics"|"error", seq, ...}``, plus
``ready`` when a connection is accepted. ``seq`` numbers the session's frames so a reconnecting
client says where it stopped.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

Codec = Literal["pcm16", "opus"]
SUPPORTED_CODECS = frozenset({"pcm16"})
MAX_XR_DATA_KEYS = 64


class AudioFrame(BaseModel):
    """A chunk of the user's audio."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["audio"]
    codec: Codec
    seq: int = Field(ge=0)
    payload: str
    ts: float

    def pcm(self) -> bytes:
        """The decoded PCM16 bytes; ValueError when the payload is not base64 of whole samples."""
        try:
            raw = base64.b64decode(self.payload, validate=True)
        except binascii.Error:
            raise ValueError("payload is not base64") from None
        if len(raw) % 2:
            raise ValueError("PCM16 payload has an odd number of bytes")
        return raw


class ControlPayload(BaseModel):
    """What a control frame asks for."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["end_of_utterance", "text", "cancel", "bye"]
    text: str | None = Field(default=None, max_length=4000)


class ControlFrame(BaseModel):
    """A control message from the client (``codec`` is accepted and ignored, as the contract has it)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["control"]
    codec: Codec | None = None
    seq: int = Field(default=0, ge=0)
    payload: ControlPayload
    ts: float = 0.0


VoiceFrame = Annotated[AudioFrame | ControlFrame, Field(discriminator="type")]
VOICE_FRAME: TypeAdapter[AudioFrame | ControlFrame] = TypeAdapter(VoiceFrame)


class XrFrame(BaseModel):
    """One spatial sample: a pose, a gaze target, a gesture or the client's voice-activity flag."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["pose", "gaze", "gesture", "voice_vad"]
    data: dict[str, Any]
    ts: float

    @field_validator("data")
    @classmethod
    def _small(cls, data: dict[str, Any]) -> dict[str, Any]:
        if len(data) > MAX_XR_DATA_KEYS:
            raise ValueError(f"data has more than {MAX_XR_DATA_KEYS} keys")
        return data


XR_FRAME: TypeAdapter[XrFrame] = TypeAdapter(XrFrame)


def problem(error: ValidationError) -> str:
    """The first validation problem as ``where: what``, with no input echoed back."""
    first = error.errors(include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "frame"
    return f"{where}: {first['msg']}"
