"""The stream cursor and the reconnect policy, on their own: no repeat, no silent gap, bounded reconnects."""

from __future__ import annotations

import pytest

from inferflux.client.errors import (
    GuardrailBlockedError,
    ProtocolError,
    RateLimitError,
    StreamInterruptedError,
    UnavailableError,
)
from inferflux.client.events import Chunk, Done, Usage
from inferflux.client.stream import Reconnect, StreamCursor


def data(offset: int) -> dict[str, object]:
    return {"offset": offset, "text": f"t{offset}", "resume_token": f"token-{offset + 1}"}


def test_chunks_handed_out_before_a_resume_are_not_repeated() -> None:
    cursor = StreamCursor()
    cursor.accept("resume", {"stream_id": "ab12", "offset": 0, "resume_token": "token-0"})
    assert cursor.accept("data", data(0)) == Chunk(0, "t0")
    assert cursor.accept("data", data(1)) == Chunk(1, "t1")
    assert cursor.request({"model": "m"}) == {"resume_token": "token-2"}
    cursor.accept("resume", {"stream_id": "ab12", "offset": 2, "resume_token": "token-2"})
    assert cursor.accept("data", data(1)) is None
    assert cursor.accept("data", data(2)) == Chunk(2, "t2")
    assert cursor.stream_id == "ab12"


def test_a_gap_is_a_protocol_error_not_a_silent_loss() -> None:
    cursor = StreamCursor()
    cursor.accept("resume", {"stream_id": "ab12", "offset": 0, "resume_token": "token-0"})
    cursor.accept("data", data(0))
    with pytest.raises(ProtocolError):
        cursor.accept("data", data(2))
    with pytest.raises(ProtocolError):
        cursor.accept("resume", {"stream_id": "ab12", "offset": 5, "resume_token": "x"})


def test_heartbeats_refresh_the_token_and_done_ends_the_stream() -> None:
    cursor = StreamCursor("old")
    cursor.accept("heartbeat", {"offset": 4, "resume_token": "fresh"})
    assert cursor.resume_token == "fresh"
    assert not cursor.finished
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    cursor.accept("done", {"finish_reason": "length", "usage": usage})
    assert cursor.done == Done("length", Usage(3, 5, 8))


def test_an_error_event_raises_its_typed_error() -> None:
    body = {
        "error": {
            "message": "blocked",
            "type": "invalid_request_error",
            "param": None,
            "code": "guardrail_blocked",
        }
    }
    with pytest.raises(GuardrailBlockedError) as error:
        StreamCursor().accept("error", body)
    assert error.value.code == "guardrail_blocked"


def test_a_request_starts_fresh_until_a_token_arrives() -> None:
    assert StreamCursor().request({"model": "m"}) == {"model": "m"}
    with pytest.raises(StreamInterruptedError):
        StreamCursor().dropped(Reconnect(), None)


def test_reconnects_back_off_and_stop_but_progress_resets_the_count() -> None:
    policy = Reconnect(max_reconnects=3, backoff_seconds=0.1, max_backoff_seconds=0.15)
    cursor = StreamCursor("token-0")
    assert [cursor.dropped(policy, None) for _ in range(3)] == [0.0, 0.1, 0.15]
    cursor.accept("data", data(0))  # a chunk got through: the next drop starts over
    assert cursor.dropped(policy, None) == 0.0
    assert cursor.reconnects == 4
    cursor.dropped(policy, None)
    cursor.dropped(policy, None)
    with pytest.raises(StreamInterruptedError):
        cursor.dropped(policy, None)


def test_retry_after_is_honoured_within_bounds() -> None:
    policy = Reconnect(max_retries=2, max_retry_after=10)
    limited = RateLimitError("slow down", code="rate_limited", status=429, retry_after=3)
    assert policy.retry_delay(limited, 0) == 3
    assert policy.retry_delay(limited, 2) is None
    assert policy.retry_delay(RateLimitError("x", retry_after=30), 0) is None
    assert policy.retry_delay(UnavailableError("no hint"), 0) is None
    with pytest.raises(RateLimitError):
        StreamCursor().refused(limited, policy, 2)
