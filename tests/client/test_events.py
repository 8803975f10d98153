"""Server-sent events cut at any byte still decode to the same events."""

from __future__ import annotations

from inferflux.client.events import Inference, SSEDecoder, Usage
from inferflux.router.sse import frame

STREAM = (
    frame("resume", {"stream_id": "ab12", "offset": 0, "resume_token": "t0"})
    + b'id: 0\nevent: data\ndata: {"offset":0,"text":"caf\xc3\xa9\\n","resume_token":"t1"}\n\n'
    + b': a comment\r\nevent: heartbeat\r\ndata: {"offset":1,"resume_token":"t2"}\r\n\r\n'
    + frame("done", {"finish_reason": "stop", "usage": None})
)
EXPECTED = [
    ("resume", {"stream_id": "ab12", "offset": 0, "resume_token": "t0"}),
    ("data", {"offset": 0, "text": "café\n", "resume_token": "t1"}),
    ("heartbeat", {"offset": 1, "resume_token": "t2"}),
    ("done", {"finish_reason": "stop", "usage": None}),
]


def test_events_split_at_every_byte_decode_the_same() -> None:
    for cut in range(len(STREAM)):
        decoder = SSEDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == EXPECTED


def test_byte_by_byte() -> None:
    decoder = SSEDecoder()
    events = [event for i in range(len(STREAM)) for event in decoder.feed(STREAM[i : i + 1])]
    assert events == EXPECTED


def test_the_answer_document_parses() -> None:
    document = {
        "id": "r",
        "model": "m",
        "output": "hi",
        "finish_reason": "stop",
        "usage": {"total_tokens": 4},
    }
    assert Inference.of(document) == Inference("r", "m", "hi", "stop", Usage(0, 0, 4))
    assert Inference.of({"output": "x"}).usage is None
