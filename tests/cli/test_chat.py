"""``inferctl chat --interactive`` in a real pty against a fake OpenAI router (tests/cli/conftest.py).

The real router and model are exercised by e2e/test_local_up.py.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INFERCTL = str(Path(sys.executable).parent / "inferctl")
PROMPT_YAML = """\
apiVersion: inferflux.io/v1alpha1
kind: Prompt
metadata: {name: helper}
spec:
  id: helper
  version: 1.2.0
  slices: {system: "You help with {{product}}."}
  variables: {type: object, properties: {product: {type: string}}, required: [product]}
"""

_spec = importlib.util.spec_from_file_location("terminal", Path(__file__).with_name("terminal.py"))
assert _spec is not None
assert _spec.loader is not None
terminal = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(terminal)


@pytest.fixture
def chat(fake_router: Any, tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "prompt.yaml").write_text(PROMPT_YAML)
    argv = [INFERCTL, "chat", "--interactive", "--url", fake_router.url, "--prompts", str(tmp_path)]
    term = terminal.Terminal(argv, cwd=tmp_path)
    term.expect("gemma> ")
    yield term
    if term.process.poll() is None:
        term.process.kill()
        term.process.wait()


def test_answers_stream_into_the_terminal_token_by_token(chat: Any, fake_router: Any) -> None:
    chat.send("hi there")
    chat.expect("Hel")
    assert "lo from" not in chat.screen  # the server holds the rest until we have seen the first token
    fake_router.release.set()
    chat.expect("lo from gemma\n")
    chat.expect("gemma> ")
    assert fake_router.requests[-1]["stream"] is True
    assert "max_tokens" not in fake_router.requests[-1]
    assert fake_router.requests[-1]["messages"] == [{"role": "user", "content": "hi there"}]
    assert chat.close() == 0


def test_history_reset_model_and_prompt_commands(chat: Any, fake_router: Any) -> None:
    fake_router.release.set()
    chat.send("one")
    chat.expect("gemma> ")
    chat.send("two")
    chat.expect("gemma> ")
    assert [m["content"] for m in fake_router.requests[-1]["messages"]] == ["one", "Hello from gemma", "two"]

    chat.send("/reset")
    chat.expect("conversation cleared")
    chat.send("/model tiny")
    chat.expect("model: tiny")
    chat.send("/prompt helper product=InferFlux")
    chat.expect("prompt: helper@1.2.0")
    chat.send("three")
    chat.expect("Hello from tiny")
    chat.expect("tiny> ")
    last = fake_router.requests[-1]
    assert last["model"] == "tiny"
    assert last["messages"] == [
        {"role": "system", "content": "You help with InferFlux."},
        {"role": "user", "content": "three"},
    ]
    chat.send("/model nope")
    chat.expect("no model 'nope'; available: gemma, tiny")
    chat.send("/prompt helper")
    chat.expect("prompt helper not set: variables of prompt 'helper'")
    chat.send("/exit")
    assert chat.process.wait(10) == 0


def test_a_router_error_is_one_line_and_the_chat_goes_on(fake_router: Any, tmp_path: Path) -> None:
    argv = [INFERCTL, "chat", "-i", "--url", fake_router.url, "--model", "broken", "--prompts", str(tmp_path)]
    term = terminal.Terminal(argv, cwd=tmp_path)
    term.expect("broken> ")
    term.send("hello")
    screen = term.expect("broken> ")
    assert "error: the router answered 503: no ready replica" in screen
    assert "Traceback" not in screen
    assert term.close() == 0


def test_one_shot_chat_and_an_unreachable_router(fake_router: Any, tmp_path: Path) -> None:
    fake_router.release.set()
    once = subprocess.run(
        [INFERCTL, "chat", "--url", fake_router.url, "--max-tokens", "7", "hello"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert once.returncode == 0
    assert once.stdout == "Hello from gemma\n"
    assert fake_router.requests[-1]["max_tokens"] == 7
    down = subprocess.run(
        [INFERCTL, "chat", "--url", "http://127.0.0.1:9/v1", "hi"], capture_output=True, text=True, timeout=30
    )
    assert down.returncode == 1
    assert down.stderr == "inferctl: error: cannot reach the router at http://127.0.0.1:9/v1\n"
