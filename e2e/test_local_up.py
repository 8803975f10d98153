"""``inferctl up`` for real: the bundled chat model (SmolLM2) on llama.cpp behind the router, no cluster.

The stack is started exactly as ``make run`` does (``inferctl up`` with no arguments, reading
docs/examples/local), from a scratch folder holding a copy of those samples so the edit test does not
touch the repository. The model cache is the repository's .cache/models, assembled once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import OpenAI

from inferflux.operator.local.process import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
INFERCTL = str(Path(sys.executable).parent / "inferctl")
STARTUP_SECONDS = 900


class Running:
    """The ``inferctl up`` process with its output collected line by line."""

    def __init__(self, cwd: Path, port: int) -> None:
        env = {**os.environ, "INFERFLUX_MODEL_DIR": str(REPO / ".cache/models"), "PYTHONUNBUFFERED": "1"}
        # The router binds its admin listener too: a free port, so another router here cannot block it.
        command = [INFERCTL, "up", "--port", str(port), "--admin-port", str(free_port())]
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(
                target=lambda s=stream, k=sink: k.extend(iter(s.readline, "")), daemon=True
            ).start()

    def wait_for(self, pattern: str, where: str = "stderr", timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.stdout if where == "stdout" else self.stderr
            for line in lines:
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not seen; stdout={self.stdout!r} stderr={self.stderr!r}")

    def children(self) -> list[int]:
        """Pids of the processes ``inferctl up`` started (its direct children)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str, Path]]:
    workdir = tmp_path_factory.mktemp("local")
    samples = workdir / "docs/examples/local"
    shutil.copytree(REPO / "docs/examples/local", samples)
    running = Running(workdir, free_port())
    try:
        url = running.wait_for(r"^InferFlux is up: (\S+)", "stdout", STARTUP_SECONDS).group(1)
        yield running, url, samples
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            for pid in running.children():
                os.kill(pid, signal.SIGKILL)


def stream_text(url: str) -> tuple[str, int]:
    client = OpenAI(base_url=url, api_key="local", timeout=120)
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=24,
        stream=True,
    )
    parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
    return "".join(parts), sum(1 for p in parts if p)


def test_the_printed_url_serves_a_real_streamed_completion(stack: tuple[Running, str, Path]) -> None:
    running, url, _ = stack
    banner = "".join(running.stdout)
    # The URL is printed only once the default model has answered through the router.
    running.wait_for(r"^inferctl up: smollm2-135m answered through the router in", "stderr", 10)
    running.wait_for(r"^inferctl up: AUTH IS OFF", "stderr", 10)
    assert f"curl -N {url}/chat/completions" in banner
    assert f'OpenAI(base_url="{url}", api_key="local")' in banner
    text, chunks = stream_text(url)
    assert text.strip()
    assert chunks > 1
    models = OpenAI(base_url=url, api_key="local").models.list()
    assert [m.id for m in models] == ["smollm2-135m"]


def test_the_default_model_answers_a_question(stack: tuple[Running, str, Path]) -> None:
    _, url, _ = stack
    reply = OpenAI(base_url=url, api_key="local", timeout=120).chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Tell me the capital of France."}],
        max_tokens=32,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def pinned_schema(model: str, folder: Path) -> Path:
    """docs/openapi.yaml with each request's ``model`` pinned to the served one (so that generated
    requests reach the runtime rather than an unknown model's 404) and ``max_tokens`` kept small (so
    that hundreds of requests generate in seconds on a CPU)."""
    document = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())

    def pin(schema: dict[str, Any]) -> None:
        properties = schema.get("properties")
        if isinstance(properties, dict) and "model" in properties:
            properties["model"] = {"type": "string", "enum": [model]}
            if "max_tokens" in properties:
                properties["max_tokens"] = {"type": "integer", "minimum": 1, "maximum": 8}

    for path in document["paths"].values():
        for operation in path.values():
            pin(
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
    for schema in document["components"]["schemas"].values():
        pin(schema)
    pinned = folder / "openapi.yaml"
    pinned.write_text(yaml.safe_dump(document, sort_keys=False))
    return pinned


def test_the_live_api_keeps_to_its_openapi_document(stack: tuple[Running, str, Path], tmp_path: Path) -> None:
    """schemathesis on the live local mode: no 5xx, and every status, content type and body as
    docs/openapi.yaml documents them. A fixed seed makes the generated requests the same each run."""
    _, url, _ = stack
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    pinned = pinned_schema("smollm2-135m", tmp_path)
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            str(pinned),
            "--url",
            url.removesuffix("/v1"),
            "--checks",
            checks,
            "--max-examples",
            "5",
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "60",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    # Every documented operation was exercised (counted from the document: routes get added).
    operations = sum(
        method in ("get", "put", "post", "delete", "patch")
        for path in yaml.safe_load(pinned.read_text())["paths"].values()
        for method in path
    )
    assert f"Tested: {operations}" in run.stdout, run.stdout[-3000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated is not None, run.stdout[-3000:]
    assert int(generated.group(1)) >= 200, run.stdout[-3000:]


def test_editing_the_yaml_rolls_out_a_new_revision(stack: tuple[Running, str, Path]) -> None:
    running, url, samples = stack
    before = set(running.children())
    path = samples / "smollm2-135m.yaml"
    path.write_text(path.read_text().replace("contextSize: 2048", "contextSize: 1024"))
    running.wait_for(r"smollm2-135m moved to revision", timeout=STARTUP_SECONDS)
    running.wait_for(r"^inferctl up: applied$", timeout=60)
    text, _ = stream_text(url)
    assert text.strip()
    after = set(running.children())
    assert len(after) == len(before)
    assert after != before  # the old runtime process is gone, a new one serves


def test_chat_interactive_streams_a_real_answer_in_a_pty(stack: tuple[Running, str, Path]) -> None:
    _, url, samples = stack
    spec = importlib.util.spec_from_file_location("terminal", REPO / "tests/cli/terminal.py")
    assert spec is not None
    assert spec.loader is not None
    terminal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(terminal)
    argv = [INFERCTL, "chat", "--interactive", "--url", url, "--max-tokens", "24"]
    term = terminal.Terminal(argv, cwd=samples.parents[2])
    try:
        term.expect("smollm2-135m> ", timeout=120)
        term.send("/prompt assistant product=InferFlux")
        term.expect("prompt: assistant@1.0.0\nsmollm2-135m> ")
        term.send("Say hello.")
        term.expect("Say hello.\n")  # the terminal's echo of what was typed
        answer = term.expect("\nsmollm2-135m> ", timeout=300).removesuffix("\nsmollm2-135m> ")
        assert answer.strip()  # the streamed text, printed before the next prompt
        assert not answer.startswith("error:")
        assert term.close() == 0
    finally:
        if term.process.poll() is None:
            term.process.kill()


def test_ctrl_c_stops_everything_and_leaves_no_process(stack: tuple[Running, str, Path]) -> None:
    running, url, _ = stack
    children = running.children()
    assert len(children) == 2  # the router and one runtime
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0
    running.wait_for(r"^inferctl up: stopped$")
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    with pytest.raises(Exception, match="Connection"):
        OpenAI(base_url=url, api_key="local", max_retries=0, timeout=5).models.list()
