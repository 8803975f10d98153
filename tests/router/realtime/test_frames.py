"""The contract's frames: what is accepted, and the error each bad frame gets."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from inferflux.router.realtime.frames import VOICE_FRAME, XR_FRAME, AudioFrame, ControlFrame, problem


def audio(**fields: object) -> dict[str, object]:
    return {"type": "audio", "codec": "pcm16", "seq": 0, "payload": "", "ts": 0, **fields}


def test_audio_payloads_are_base64_pcm16() -> None:
    frame = VOICE_FRAME.validate_python(audio(payload=base64.b64encode(b"\x01\x00\x02\x00").decode()))
    assert isinstance(frame, AudioFrame)
    assert frame.pcm() == b"\x01\x00\x02\x00"
    with pytest.raises(ValueError, match="odd number"):
        VOICE_FRAME.validate_python(audio(payload=base64.b64encode(b"\x01").decode())).pcm()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not base64"):
        VOICE_FRAME.validate_python(audio(payload="%%%")).pcm()  # type: ignore[union-attr]


def test_control_frames_name_an_action() -> None:
    frame = VOICE_FRAME.validate_json(b'{"type":"control","payload":{"action":"text","text":"hi"}}')
    assert isinstance(frame, ControlFrame)
    assert frame.payload.text == "hi"
    with pytest.raises(ValidationError) as error:
        VOICE_FRAME.validate_python({"type": "control", "payload": {"action": "dance"}})
    assert problem(error.value).startswith("control.payload.action:")


def test_problems_never_echo_the_input() -> None:
    with pytest.raises(ValidationError) as error:
        VOICE_FRAME.validate_python(audio(codec="secret-codec-name"))
    assert "secret-codec-name" not in problem(error.value)


def test_xr_frames_are_one_of_four_kinds_with_bounded_data() -> None:
    assert XR_FRAME.validate_json(b'{"type":"pose","data":{"x":1},"ts":3}').data == {"x": 1}
    with pytest.raises(ValidationError):
        XR_FRAME.validate_python({"type": "teleport", "data": {}, "ts": 0})
    with pytest.raises(ValidationError, match="more than 64 keys"):
        XR_FRAME.validate_python({"type": "pose", "data": {str(i): i for i in range(65)}, "ts": 0})
