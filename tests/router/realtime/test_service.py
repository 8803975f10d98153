"""The realtime endpoints on a real router (uvicorn, real WebSockets) over the fake OpenAI backend.

Speech comes from flite; the model answers are the backend's ``t0 t1 ...`` pieces, so the
tests can tell exactly which pieces arrived, were lost or were repeated.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.prompts.resolver import PromptResolver
from inferflux.prompts.sources import DirectorySource
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.realtime.close_codes import CloseCode
from inferflux.router.realtime.voice import DEFAULT_VARIABLES

speech = importlib.import_module("inferflux_tests_speech")
RealtimeClient = importlib.import_module("inferflux_tests_realtime_client").RealtimeClient
MANIFESTS = Path(__file__).resolve().parents[3] / "prompts" / "manifests"


def text_turn(text: str) -> dict[str, Any]:
    return {"type": "control", "payload": {"action": "text", "text": text}}


async def eventually(condition: Any, within: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def router_over_mock(make_router: Any, mocks: Any, route: Any, **state: Any) -> tuple[Any, Any]:
    mock = await mocks(**state)
    harness = await make_router({"m": route([mock.url])})
    return harness, mock


async def test_a_text_turn_streams_partials_then_final_then_metrics(make_router, mocks, route) -> None:
    harness, mock = await router_over_mock(make_router, mocks, route)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=4)
    await client.send(text_turn("hello there"))
    final = await client.until("final")
    partials = [frame["text"] for frame in client.frames if frame["type"] == "partial"]
    assert partials == ["t0 ", "t1 ", "t2 ", "t3 "]
    assert final["text"] == "t0 t1 t2 t3 "
    assert final["transcript"] == "hello there"
    metrics = await client.until("metrics")
    assert metrics["first_partial_ms"] >= 0
    assert metrics["completion_tokens"] == 4
    assert mock.state.bodies[-1]["messages"][-1] == {"role": "user", "content": "hello there"}
    seqs = [frame["seq"] for frame in client.frames if "seq" in frame]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "temperature" not in mock.state.bodies[-1]  # unset: the model's default
    await client.close()


async def test_a_sessions_temperature_goes_with_each_of_its_turns(make_router, mocks, route) -> None:
    harness, mock = await router_over_mock(make_router, mocks, route)
    voice = RealtimeClient(harness.session, harness.url)
    await voice.open(model="m", max_tokens=1, temperature=0)
    await voice.send(text_turn("hello"))
    await voice.until("final")
    assert mock.state.bodies[-1]["temperature"] == 0
    xr = RealtimeClient(harness.session, harness.url, kind="xr")
    await xr.open(model="m", max_tokens=1, temperature=0.7)
    async with harness.post("/api/v1/xr:stream", {"session_id": xr.session_id, "question": "hi"}) as response:
        assert response.status == 200
        await response.read()
    assert mock.state.bodies[-1]["temperature"] == 0.7
    async with harness.post("/api/v1/voice/session", {"model": "m", "temperature": 3}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["param"] == "temperature"
    await voice.close()
    await xr.close()


async def test_spoken_words_barge_in_and_the_upstream_request_is_closed(make_router, mocks, route) -> None:
    harness, mock = await router_over_mock(make_router, mocks, route, delay_ms=50)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=400)
    await client.send(text_turn("tell me a long story"))
    await client.until("partial")
    assert mock.state.active_streams == 1
    speech_frames = speech.frames(speech.speak_pcm16("stop please"))
    for seq, chunk in enumerate(speech_frames[:15]):
        await client.send(speech.audio_frame(chunk, seq))
    barge = await client.until("barge_in")
    assert barge["turn"] == 1
    assert barge["reason"] == "speech"
    # The backend saw its stream closed: generation stopped upstream, not just in the router.
    await eventually(lambda: mock.state.active_streams == 0 and mock.state.cancelled == 1)
    assert not [frame for frame in client.frames if frame["type"] == "final"]
    await client.close()


async def test_reconnect_with_the_resume_token_loses_no_piece(make_router, mocks, route) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route, delay_ms=20)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=60)
    await client.send(text_turn("count"))
    for _ in range(5):
        await client.until("partial")
    await client.close()  # drops mid-answer; the answer keeps streaming into the session
    ready = await client.reconnect()
    assert ready["after"] == client.last_seq
    final = await client.until("final")
    pieces = [frame["text"] for frame in client.frames if frame["type"] == "partial"]
    assert pieces == [f"t{i} " for i in range(60)]  # none lost, none repeated
    assert final["text"] == "".join(pieces)
    await client.close()


async def test_a_resume_needs_the_sessions_token(make_router, mocks, route) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route)
    client = RealtimeClient(harness.session, harness.url)
    answer = await client.open(model="m")
    forged = {"session_id": answer["session_id"], "resume_token": "x" * 43}
    async with harness.post("/api/v1/voice/session", forged) as response:
        assert response.status == 401
        assert "resume_token" in (await response.json())["error"]["message"]
    async with harness.post(
        "/api/v1/xr/session", {"session_id": answer["session_id"], "resume_token": answer["resume_token"]}
    ) as response:
        assert response.status == 404  # a voice session is not an XR session
    await client.close()


async def close_code(client: Any) -> int:
    """The code the server closes ``client`` with (skipping frames sent before)."""
    while True:
        frame = await client.receive(10)
        if frame["type"] == "closed":
            return int(frame["code"])


async def test_a_ticket_admits_one_connection_only(make_router, mocks, route) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route)
    async with harness.post("/api/v1/voice/session", {"model": "m"}) as response:
        ticket = (await response.json())["ticket"]
    url = harness.url.replace("http", "ws", 1) + "/api/v1/voice/ws?ticket="
    first = await harness.session.ws_connect(url + ticket)
    assert orjson.loads((await first.receive(5)).data)["type"] == "ready"
    for wrong in (ticket, "made-up", ""):  # spent, unknown, missing: frames before auth go nowhere
        ws = await harness.session.ws_connect(url + wrong)
        await ws.send_str(orjson.dumps(text_turn("hi")).decode())
        message = await ws.receive(5)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CloseCode.UNAUTHENTICATED
    await first.close()


@pytest.mark.parametrize(
    ("abuse", "code"),
    [
        ("oversized", CloseCode.TOO_BIG),
        ("binary", CloseCode.UNSUPPORTED_DATA),
        ("ten_times_the_rate", CloseCode.POLICY_VIOLATION),
    ],
)
async def test_abuse_closes_that_connection_and_others_keep_working(
    make_router, mocks, route, abuse: str, code: int
) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route)
    bystander = RealtimeClient(harness.session, harness.url)
    await bystander.open(model="m", max_tokens=2)
    abuser = RealtimeClient(harness.session, harness.url)
    await abuser.open(model="m")
    assert abuser.ws is not None
    silent = speech.audio_frame(speech.silence(20), 0)
    if abuse == "oversized":
        await abuser.send({**silent, "payload": "A" * 70000})
    elif abuse == "binary":
        await abuser.ws.send_bytes(b"\x00" * 640)
    else:  # 100 frames a second allowed; 1000 in about a second
        for seq in range(1000):
            await abuser.send({**silent, "seq": seq})
            if seq % 100 == 99:
                await asyncio.sleep(0.1)
            if abuser.ws.closed:
                break
    assert await close_code(abuser) == code
    await bystander.send(text_turn("still there?"))
    assert (await bystander.until("final"))["text"] == "t0 t1 "
    await bystander.close()


async def test_wrong_codec_and_bad_frames_get_error_frames_and_the_session_goes_on(
    make_router, mocks, route
) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=1)
    await client.send(speech.audio_frame(b"\x01\x02" * 160, 0, codec="opus"))
    assert (await client.until("error"))["code"] == "unsupported_codec"
    await client.send({"type": "audio", "codec": "mp3", "seq": 1, "payload": "", "ts": 0})
    assert (await client.until("error"))["code"] == "bad_frame"
    await client.send({"type": "audio", "codec": "pcm16", "seq": 2, "payload": "not base64!", "ts": 0})
    error = await client.until("error")
    assert error == {
        "type": "error",
        "seq": error["seq"],
        "code": "bad_frame",
        "message": "payload is not base64",
    }
    assert client.ws is not None
    await client.ws.send_str("{not json")
    assert (await client.until("error"))["code"] == "bad_frame"
    await client.send(text_turn("hi"))
    assert (await client.until("final"))["text"] == "t0 "
    await client.close()


async def test_xr_frames_are_fused_into_the_question(make_router, mocks, route) -> None:
    harness, mock = await router_over_mock(make_router, mocks, route)
    client = RealtimeClient(harness.session, harness.url, kind="xr")
    await client.open(model="m", max_tokens=3)
    await client.send({"type": "gaze", "data": {"target": "anchor:lamp-1"}, "ts": 1})
    await client.send({"type": "gaze", "data": {"target": "anchor:lamp-2"}, "ts": 2})
    await client.send({"type": "gesture", "data": {"kind": "point", "at": "anchor:lamp-2"}, "ts": 3})
    await client.send({"type": "teleport", "data": {}, "ts": 4})
    assert (await client.until("error"))["code"] == "bad_frame"  # the bad frame, after the three good ones
    ask = {"session_id": client.session_id, "question": "what is this?"}
    async with harness.post("/api/v1/xr:stream", ask) as response:
        assert response.status == 200
        body = await response.read()
    events = [block.split(b"\ndata: ", 1) for block in body.strip().split(b"\n\n")]
    kinds = [kind.removeprefix(b"event: ").decode() for kind, _ in events]
    assert kinds == ["partial", "partial", "partial", "final"]
    final = orjson.loads(events[-1][1])
    assert final["text"] == "t0 t1 t2 "
    assert final["context"]["frames"] == 3
    question = mock.state.bodies[-1]["messages"][-1]["content"]
    assert 'gaze: {"target":"anchor:lamp-2"}' in question
    assert '"at":"anchor:lamp-2"' in question
    assert "lamp-1" not in question  # only the latest sample of each kind
    assert question.endswith("Question: what is this?")
    await client.close()


async def test_xr_stream_sends_heartbeats_while_the_model_is_slow(make_router, mocks, route) -> None:
    mock = await mocks(delay_ms=700)
    harness = await make_router({"m": route([mock.url])}, realtime_heartbeat_seconds=0.2)
    client = RealtimeClient(harness.session, harness.url, kind="xr")
    await client.open(model="m", max_tokens=2)
    async with harness.post(
        "/api/v1/xr:stream", {"session_id": client.session_id, "question": "hi"}
    ) as response:
        body = await response.read()
    assert body.count(b"event: heartbeat") >= 2
    assert body.count(b"event: partial") == 2
    await client.close()


async def test_voice_stream_reads_a_session_as_sse(make_router, mocks, route) -> None:
    harness, _ = await router_over_mock(make_router, mocks, route)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=2)
    request = {"session_id": client.session_id, "text": "hello"}
    response = await harness.session.post(harness.url + "/api/v1/voice:stream", json=request)
    assert response.status == 200
    seen = b""
    async for chunk in response.content.iter_any():
        seen += chunk
        if b"event: metrics" in seen:
            break
    response.close()
    assert b"event: partial" in seen
    assert b'"text":"t0 t1 "' in seen
    await client.close()


async def test_sessions_belong_to_their_tenant(make_router, mocks, route, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 48)
    hasher = api_keys.load_hasher(str(secret))
    holder = PolicyHolder()
    every = [Scope.INFERENCE, Scope.MODELS_READ]
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "alpha": TenantPolicy(name="alpha", scopes=every, models=["m"]),
                "beta": TenantPolicy(name="beta", scopes=every, models=["other"]),
            }
        )
    )
    keys = {}
    for tenant in ("alpha", "beta"):
        key, record = api_keys.generate(hasher, tenant)
        holder.put_key(record.id, record)
        keys[tenant] = {"authorization": f"Bearer {key}"}
    mock = await mocks()
    harness = await make_router(
        {"m": route([mock.url])}, policy=holder, auth=True, auth_secret_file=str(secret)
    )
    async with harness.post("/api/v1/voice/session", {"model": "m"}) as response:
        assert response.status == 401
    async with harness.post("/api/v1/voice/session", {"model": "m"}, headers=keys["beta"]) as response:
        assert response.status == 403  # beta may not use m
    client = RealtimeClient(harness.session, harness.url)
    await client.open(headers=keys["alpha"], model="m", max_tokens=1)
    await client.send(text_turn("hi"))
    assert (await client.until("final"))["text"] == "t0 "
    stolen = {"session_id": client.session_id, "resume_token": client.resume_token}
    async with harness.post("/api/v1/voice/session", stolen, headers=keys["beta"]) as response:
        assert response.status == 404
    async with harness.post(
        "/api/v1/voice:stream", {"session_id": client.session_id}, headers=keys["beta"]
    ) as response:
        assert response.status == 404
    await client.close()


class Recorder:
    """A pipeline stage that records what passes, and refuses text holding ``REFUSE``."""

    name = "recorder"

    def __init__(self) -> None:
        self.admitted: list[tuple[str, str]] = []
        self.finished: list[tuple[str, int | None]] = []

    async def admit(self, call: Any) -> None:
        text = orjson.dumps(call.document).decode()
        if "REFUSE" in text:
            raise UpstreamError(ErrorCode.INSUFFICIENT_QUOTA, "budget exhausted")
        self.admitted.append((call.route, call.document["messages"][-1]["content"]))

    async def finish(self, call: Any) -> None:
        self.finished.append((call.route, call.usage.completion_tokens if call.usage else None))

    def output(self, call: Any) -> None:
        return None


async def test_turns_pass_the_pipeline_with_the_managed_prompts(make_router, mocks, route) -> None:
    recorder = Recorder()
    mock = await mocks()
    prompts = PromptResolver([DirectorySource(MANIFESTS)])
    harness = await make_router({"m": route([mock.url])}, stages=[recorder], prompts=prompts)
    voice = RealtimeClient(harness.session, harness.url)
    await voice.open(model="m", max_tokens=2, variables={"assistant_name": "Ada", "language": "French"})
    await voice.send(text_turn("hello"))
    await voice.until("metrics")
    system = mock.state.bodies[-1]["messages"][0]
    assert system["role"] == "system"
    assert "You are Ada, a voice assistant speaking with the user in French" in system["content"]
    assert "The user may interrupt you at any time" in system["content"]  # the barge_in slice
    await voice.send(text_turn("REFUSE this"))
    refused = await voice.until("error")
    assert (refused["code"], refused["message"]) == ("insufficient_quota", "budget exhausted")
    xr = RealtimeClient(harness.session, harness.url, kind="xr")
    await xr.open(model="m", max_tokens=1)
    async with harness.post("/api/v1/xr:stream", {"session_id": xr.session_id, "question": "hi"}) as response:
        assert response.status == 200
        await response.read()
    assert "mixed-reality scene" in mock.state.bodies[-1]["messages"][0]["content"]
    async with harness.post(
        "/api/v1/xr:stream", {"session_id": xr.session_id, "question": "REFUSE"}
    ) as response:
        assert response.status == 429  # refused before any event: an ordinary HTTP error
        assert (await response.json())["error"]["code"] == "insufficient_quota"
    assert recorder.admitted == [("voice", "hello"), ("xr", "hi")]
    assert recorder.finished == [("voice", 2), ("xr", 1)]  # the refused turns were never admitted
    await voice.close()
    await xr.close()


async def test_the_server_pings_and_drops_a_client_that_never_answers(make_router, mocks, route) -> None:
    mock = await mocks()
    harness = await make_router({"m": route([mock.url])}, realtime_ping_seconds=1.0)
    async with harness.post("/api/v1/voice/session", {"model": "m"}) as response:
        path = (await response.json())["ws_path"]
    ws = await harness.session.ws_connect(harness.url.replace("http", "ws", 1) + path, autoping=False)
    kinds = []
    while True:
        message = await ws.receive(10)
        kinds.append(message.type)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert kinds[:2] == [aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING]  # ready, then a ping
    assert ws.close_code == 1011  # no pong within the ping interval: the keepalive timed out


async def test_one_session_keeps_one_prompt_variant_across_its_turns(make_router, mocks, route) -> None:
    """The voice prompt splits its traffic 50/50 between two variants; a conversation must not flip
    between them (and the runtime reuses the cached prompt only while it stays the same)."""
    mock = await mocks()
    prompts = PromptResolver([DirectorySource(MANIFESTS)])
    harness = await make_router({"m": route([mock.url])}, prompts=prompts)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="m", max_tokens=2)
    for number in range(8):  # by request id, 8 turns would share a variant once in 128 sessions
        await client.send(text_turn(f"question {number}"))
        await client.until("metrics")
    systems = {body["messages"][0]["content"] for body in mock.state.bodies}
    assert len(mock.state.bodies) == 8
    assert len(systems) == 1
    await client.close()


async def test_the_voice_defaults_fill_every_variable_of_the_control_variant() -> None:
    resolver = PromptResolver([DirectorySource(MANIFESTS)])
    for number in range(64):  # the variant follows a hash of the key: find one that gets "control"
        resolved = await resolver.resolve("voice", DEFAULT_VARIABLES, request_id=f"session-{number}")
        if resolved.variant == "control":
            break
    assert resolved.variant == "control"
    assert "at most 3 unless" in resolved.messages[0]["content"]  # it rendered "at most  unless"
