"""The stage pipeline: order, refusals, exactly-once finish, output filters, and the router's use of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.pipeline import Call, OutputFilter, Pipeline, Usage, drained, filtered

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


@dataclass
class Recorder:
    """A stage that logs what happens to it and can refuse or filter."""

    name: str
    log: list[str]
    refuse: bool = False
    upper: bool = False
    seen: list[Call] = field(default_factory=list)

    async def admit(self, call: Call) -> None:
        self.log.append(f"admit {self.name}")
        if self.refuse:
            raise UpstreamError(ErrorCode.INSUFFICIENT_QUOTA, f"{self.name} says no")
        call.headers.append((f"x-{self.name}".encode(), b"1"))

    async def finish(self, call: Call) -> None:
        self.log.append(f"finish {self.name} {call.status} {call.error}")
        self.seen.append(call)

    def output(self, call: Call) -> OutputFilter | None:
        return Upper() if self.upper else None


class Upper:
    """Holds one byte back, to show that `drained` releases what a filter kept."""

    def __init__(self) -> None:
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.held + chunk
        self.held, data = data[-1:], data[:-1]
        return data.upper()

    def close(self) -> bytes:
        held, self.held = self.held, b""
        return held.upper()


def make_call() -> Call:
    return Call("r1", "chat", "m", dict(CHAT), orjson.dumps(CHAT))


async def test_admit_runs_in_order_and_finish_in_reverse_once() -> None:
    log: list[str] = []
    pipeline = Pipeline([Recorder("a", log), Recorder("b", log)])
    call = make_call()
    await pipeline.admit(call)
    call.status = 200
    await pipeline.finish(call)
    await pipeline.finish(call)
    assert log == ["admit a", "admit b", "finish b 200 ", "finish a 200 "]


async def test_a_refusal_finishes_only_the_stages_that_admitted_and_records_the_error() -> None:
    log: list[str] = []
    pipeline = Pipeline([Recorder("a", log), Recorder("b", log, refuse=True), Recorder("c", log)])
    call = make_call()
    with pytest.raises(UpstreamError):
        await pipeline.admit(call)
    assert log == ["admit a", "admit b", "finish a 429 insufficient_quota"]
    assert call.finished


async def test_a_stage_failing_to_finish_does_not_skip_the_stages_before_it() -> None:
    log: list[str] = []

    class Broken(Recorder):
        async def finish(self, call: Call) -> None:
            raise RuntimeError("boom")

    pipeline = Pipeline([Recorder("audit", log), Broken("budget", log)])
    call = make_call()
    await pipeline.admit(call)
    await pipeline.finish(call)
    assert log[-1].startswith("finish audit")


def test_replace_document_changes_what_goes_upstream() -> None:
    call = make_call()
    call.replace_document({**call.document, "max_tokens": 1})
    assert orjson.loads(call.body)["max_tokens"] == 1


def test_filters_chain_and_drain_what_they_hold() -> None:
    filters = [Upper(), Upper()]
    out = filtered(filters, b"abct") + filtered(filters, b"tt") + drained(filters)
    assert out == b"ABCTTT"


def test_usage_reads_openai_usage_and_refuses_nonsense() -> None:
    usage = Usage.from_openai(
        {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}
    )
    assert usage == Usage(5, 2, 4)
    assert usage.total == 7
    assert Usage.from_openai({"prompt_tokens": "5"}) is None
    assert Usage.from_openai(None) is None


async def test_the_router_runs_stages_around_a_streamed_answer(
    mocks: Any, make_router: Any, route: Any
) -> None:
    log: list[str] = []
    stage = Recorder("quota", log, upper=True)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])}, stages=[stage])
    document = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with harness.post("/v1/chat/completions", document) as response:
        assert response.status == 200
        assert response.headers["x-quota"] == "1", "a stage's header reaches the client"
        body = await response.read()
    assert b"T0 " in body, "the output filter saw every chunk"
    assert b"t0 " not in body
    assert body.endswith(b"DATA: [DONE]\n\n"), "and released what it held back"
    (call,) = stage.seen
    assert (call.status, call.usage, call.upstream) == (200, Usage(3, 3, 0), "m")


async def test_the_router_answers_a_refusal_with_the_stages_headers(make_router: Any, route: Any) -> None:
    log: list[str] = []
    harness = await make_router(
        {"m": route(["http://127.0.0.1:9"])}, stages=[Recorder("a", log), Recorder("b", log, refuse=True)]
    )
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 429
        assert response.headers["x-a"] == "1"
        assert (await response.json())["error"]["code"] == "insufficient_quota"
    assert log == ["admit a", "admit b", "finish a 429 insufficient_quota"]


async def test_finish_sees_an_upstream_error_and_a_whole_answer(
    mocks: Any, make_router: Any, route: Any
) -> None:
    log: list[str] = []
    stage = Recorder("s", log)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])}, stages=[stage])
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
    backend.state.fail_status = 500
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 500
    first, second = stage.seen
    assert (first.status, first.usage) == (200, Usage(3, 3, 0))
    assert second.status == 500
    assert second.error


async def test_observers_see_every_finished_call_after_the_stages_refused_ones_included() -> None:
    log: list[str] = []
    pipeline = Pipeline([Recorder("a", log), Recorder("b", log, refuse=True)])
    pipeline.observe(lambda call: log.append(f"observed {call.status} {call.error}"))
    with pytest.raises(UpstreamError):
        await pipeline.admit(make_call())
    assert log == ["admit a", "admit b", "finish a 429 insufficient_quota", "observed 429 insufficient_quota"]

    answered = make_call()
    await Pipeline().admit(answered)
    quiet = Pipeline()
    quiet.observe(lambda call: (_ for _ in ()).throw(RuntimeError("a broken observer")))
    quiet.observe(lambda call: log.append(f"second observer {call.request_id}"))
    await quiet.finish(answered)
    await quiet.finish(answered)  # once per call
    assert log[-1] == "second observer r1", "one observer's failure does not skip the next"
    assert log.count("second observer r1") == 1
