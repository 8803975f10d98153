"""The OpenAI-compatible HTTP API of one runtime pod (Starlette, orjson, server-sent events)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, request_response

from inferflux.router import telemetry
from inferflux.router.telemetry import genai, request_id_var
from inferflux.router.telemetry.exemplars import exemplar, exposition
from inferflux.runtime import structured
from inferflux.runtime.chat import checked_messages, split_final_assistant, with_default_system
from inferflux.runtime.embeddings import encode_vector
from inferflux.runtime.engine import Finish, Job
from inferflux.runtime.errors import APIError, bad_request
from inferflux.runtime.fields import CHAT_FIELDS, COMPLETION_FIELDS, EMBEDDING_FIELDS, check_fields
from inferflux.runtime.generation import collect, engine_error, stream
from inferflux.runtime.memory import headroom_ratio
from inferflux.runtime.preemption import PRIORITY_HEADER, parse_priority
from inferflux.runtime.protocol import envelope, max_tokens, usage
from inferflux.runtime.sampling import SamplingParams
from inferflux.runtime.serving import Leased, Runtime, Serving
from inferflux.runtime.telemetry import RequestTrace, request_id

log = logging.getLogger("inferflux.runtime.server")
JSON = "application/json"


async def warm_up(runtime: Runtime) -> None:
    """Generate one token end to end; the pod is ready only after this answered."""
    serving = runtime.serving
    job = Job(prompt=serving.model.tokenize("Hello"), max_tokens=1, sampling=SamplingParams(temperature=0))
    async for event in stream(serving.engine, job):
        if isinstance(event, Finish) and event.reason != "error":
            runtime.ready = True


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def _priority(request: Request) -> int:
    """The job's priority, which the router sets from the caller's policy (``x-inferflux-priority``)."""
    try:
        return parse_priority(request.headers.get(PRIORITY_HEADER))
    except ValueError:
        raise APIError(400, f"{PRIORITY_HEADER} must be an integer", param=PRIORITY_HEADER) from None


def _continuation(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The messages to render and the assistant text to continue (``""`` unless asked to continue)."""
    wanted = body.get("continue_final_message")
    counts = body.get("max_tokens_counts_final_message")
    if counts is not None and not isinstance(counts, bool):
        raise bad_request(
            "max_tokens_counts_final_message must be a boolean", "max_tokens_counts_final_message"
        )
    if wanted is None or wanted is False:
        if counts:
            raise bad_request(
                "max_tokens_counts_final_message needs continue_final_message",
                "max_tokens_counts_final_message",
            )
        return messages, ""
    if wanted is not True:
        raise bad_request("continue_final_message must be a boolean", "continue_final_message")
    # A grammar constrains a whole reply; it cannot start in the middle of one.
    if body.get("tools"):
        raise bad_request("continue_final_message cannot be combined with tools", "tools")
    if structured.response_format_grammar(body.get("response_format")) is not None:
        raise bad_request("continue_final_message cannot be combined with response_format", "response_format")
    return split_final_assistant(messages)


def _sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def chat_completions(request: Request) -> Response:
    serving: Serving = request.state.serving
    body = await _json_body(request)
    check_fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise bad_request("messages must be a non-empty list of message objects", "messages")
    messages = with_default_system(
        checked_messages(messages), request.app.state.runtime.default_system_prompt
    )
    messages, continued = _continuation(body, messages)
    tools = structured.validated_tools(body.get("tools")) if body.get("tool_choice") != "none" else []
    forced = structured.forced_tools(tools, body.get("tool_choice"))
    if forced:
        grammar: str | None = structured.schema_grammar(structured.tool_call_schema(forced))
    else:
        grammar = structured.response_format_grammar(body.get("response_format"))
    if tools and not serving.template.renders_tools:
        messages = [{"role": "system", "content": structured.tools_instruction(forced or tools)}, *messages]
    try:
        text = serving.template.render(messages, tools or None) + continued
    except ValueError as exc:
        raise bad_request(str(exc), "messages") from exc
    traced: RequestTrace = request.state.trace
    with traced.tokenizing():
        prompt = serving.tokenize_prompt(text)
    job = traced.watch(serving.job(prompt, body, grammar, serving.template.extra_stops, _priority(request)))
    if continued and body.get("max_tokens_counts_final_message") is True:
        # the text being continued was written under the same limit: it has spent part of it
        with traced.tokenizing():
            spent = len(prompt) - len(serving.tokenize_prompt(text[: len(text) - len(continued)]))
        limit = max_tokens(body)
        if limit is not None:
            job.max_tokens = min(job.max_tokens, limit - spent)
    request_id = "chatcmpl-" + request.state.request_id
    traced.describe(body, request_id)

    def message(text: str, finish: Finish) -> tuple[dict[str, Any], str]:
        call = structured.parse_tool_call(text, forced or tools) if tools else None
        if call is not None:
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return {"role": "assistant", "content": text}, finish.reason

    if not body.get("stream"):
        text, finish = await collect(serving.engine, job, request.receive)
        traced.answered(text, finish)
        reply, reason = message(text, finish)
        result = envelope(
            "chat.completion",
            request_id,
            serving.model_id,
            [{"index": 0, "message": reply, "finish_reason": reason, "logprobs": None}],
        )
        result["usage"] = usage(finish)
        return Response(orjson.dumps(result), media_type=JSON)

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        return _sse(
            envelope(
                "chat.completion.chunk",
                request_id,
                serving.model_id,
                [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
            )
        )

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        held: list[str] = []
        async for event in stream(serving.engine, job):
            if isinstance(event, Finish):
                async for tail in _stream_end(
                    event, body, request_id, serving.model_id, "chat.completion.chunk"
                ):
                    if not tail:  # _FINAL
                        reply, reason = message("".join(held), event)
                        delta = (
                            {"tool_calls": [dict(reply["tool_calls"][0], index=0)]}
                            if reply.get("tool_calls")
                            else ({"content": reply["content"]} if held else {})
                        )
                        if delta:
                            yield chunk(delta)
                        yield chunk({}, reason)
                    else:
                        yield tail
            elif tools:
                held.append(event)  # a tool call is only known once the reply is complete
            else:
                yield chunk({"content": event})

    return StreamingResponse(events(), media_type="text/event-stream")


_FINAL = b""


async def _stream_end(
    finish: Finish, body: dict[str, Any], request_id: str, model_id: str, kind: str
) -> AsyncIterator[bytes]:
    """The end of a stream: ``_FINAL`` (the caller's finish chunk), the usage chunk, ``[DONE]``."""
    if finish.reason == "error":
        yield _sse(engine_error(finish).body())
    else:
        yield _FINAL
        options = body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            tail = envelope(kind, request_id, model_id, [])
            tail["usage"] = usage(finish)
            yield _sse(tail)
    yield b"data: [DONE]\n\n"


def _prompt_text(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("prompt must be a string (or a list of one string)", "prompt")
    return prompt


async def completions(request: Request) -> Response:
    serving: Serving = request.state.serving
    body = await _json_body(request)
    check_fields(body, COMPLETION_FIELDS)
    grammar = structured.response_format_grammar(body.get("response_format"))
    traced: RequestTrace = request.state.trace
    with traced.tokenizing():
        prompt = serving.tokenize_prompt(_prompt_text(body))
    job = traced.watch(serving.job(prompt, body, grammar, (), _priority(request)))
    request_id = "cmpl-" + request.state.request_id
    traced.describe(body, request_id)

    def choice(text: str, reason: str | None) -> dict[str, Any]:
        return {"index": 0, "text": text, "finish_reason": reason, "logprobs": None}

    if not body.get("stream"):
        text, finish = await collect(serving.engine, job, request.receive)
        traced.answered(text, finish)
        result = envelope("text_completion", request_id, serving.model_id, [choice(text, finish.reason)])
        result["usage"] = usage(finish)
        return Response(orjson.dumps(result), media_type=JSON)

    async def events() -> AsyncIterator[bytes]:
        async for event in stream(serving.engine, job):
            if isinstance(event, Finish):
                async for tail in _stream_end(event, body, request_id, serving.model_id, "text_completion"):
                    yield tail or _sse(
                        envelope("text_completion", request_id, serving.model_id, [choice("", event.reason)])
                    )
            else:
                yield _sse(envelope("text_completion", request_id, serving.model_id, [choice(event, None)]))

    return StreamingResponse(events(), media_type="text/event-stream")


async def embeddings(request: Request) -> Response:
    serving: Serving = request.state.serving
    body = await _json_body(request)
    check_fields(body, EMBEDDING_FIELDS)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("encoding_format must be float or base64", "encoding_format")
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise bad_request("input must be a non-empty string or list of non-empty strings", "input")
    token_lists = [serving.model.tokenize(text) for text in inputs]
    if any(len(tokens) > serving.embedder.context_size for tokens in token_lists):
        raise APIError(
            400,
            f"an input exceeds {serving.embedder.context_size} tokens",
            param="input",
            code="context_length_exceeded",
        )
    vectors = [await asyncio.to_thread(serving.embedder.embed, tokens) for tokens in token_lists]
    count = sum(len(tokens) for tokens in token_lists)
    return Response(
        orjson.dumps(
            {
                "object": "list",
                "model": serving.model_id,
                "data": [
                    {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding)}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": count, "total_tokens": count},
            }
        ),
        media_type=JSON,
    )


async def models(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    entry = {
        "id": runtime.serving.model_id,
        "object": "model",
        "created": runtime.created,
        "owned_by": "inferflux",
    }
    return Response(orjson.dumps({"object": "list", "data": [entry]}), media_type=JSON)


async def livez(request: Request) -> Response:
    return Response(b'{"status":"alive"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    ready = request.app.state.runtime.ready
    return Response(
        b'{"status":"ready"}' if ready else b'{"status":"loading"}',
        503 if not ready else 200,
        media_type=JSON,
    )


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    with contextlib.suppress(RuntimeError):
        reading = runtime.memory()
        ratio = headroom_ratio(reading, runtime.serving.footprint)
        runtime.metrics.memory_headroom_bytes.set(reading.headroom)
        runtime.metrics.memory_headroom_ratio.set(ratio)
        runtime.metrics.memory_headroom_low.set(float(ratio < runtime.headroom_factor))
    body, content_type = exposition(runtime.metrics.registry, request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})


Handler = Callable[[Request], Awaitable[Response]]


def _api(endpoint: str, handler: Handler) -> Handler:
    """Wrap a handler: OpenAI-shaped errors, request count and latency metrics, request id and trace."""
    operation = genai.OPERATIONS[endpoint]

    async def wrapped(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        started = time.perf_counter()
        rid = request.state.request_id = request_id(request.headers)
        request_id_var.set(rid)
        traced = request.state.trace = RequestTrace.begin(request, operation, runtime.serving.model_id, rid)
        try:
            with telemetry.current(traced.span):
                if not runtime.ready:
                    raise APIError(503, "the model is still loading", type_="server_error", code="not_ready")
                response = await handler(request)
        except APIError as exc:
            response = exc.response()
        except Exception:
            log.exception("unexpected error in %s", endpoint)
            response = APIError(500, "internal error", type_="server_error").response()
        except BaseException:  # cancelled: the client went away
            traced.end(0, cancelled=True)
            raise
        runtime.metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        response.headers["x-request-id"] = rid
        with telemetry.current(traced.span):  # the exemplar and the access line name the trace
            runtime.metrics.request_duration.labels(endpoint=endpoint).observe(
                time.perf_counter() - started, exemplar(response.status_code >= 400)
            )
            log.info("%s answered %d", endpoint, response.status_code)
        return traced.finish_with(response)

    return wrapped


def _leased(endpoint: str, handler: Handler) -> Leased:
    """An API route's ASGI app: the wrapped handler, holding a lease on the model it started with."""
    return Leased(request_response(_api(endpoint, handler)))


def create_app(runtime: Runtime, extra_routes: Sequence[Route] = ()) -> Starlette:
    """The ASGI app serving ``runtime``; its lifespan starts the decode thread and warms up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.serving.engine.start(asyncio.get_running_loop())
        warm = asyncio.create_task(warm_up(runtime))
        yield
        warm.cancel()

    routes = [
        Route("/v1/chat/completions", _leased("chat", chat_completions), methods=["POST"]),
        Route("/v1/completions", _leased("completions", completions), methods=["POST"]),
        Route("/v1/embeddings", _leased("embeddings", embeddings), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", livez, methods=["GET"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
