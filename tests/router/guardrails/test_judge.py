"""The model check: the judge's question, how its answer is read, and the stage asking it through
the real router's dispatcher, with fake runtimes scripted to answer yes, no, something else, or
never (a runtime model's verdicts are not what is tested here, only what the router does with them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.policy import TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.guardrails.judge import (
    INSTRUCTION,
    JUDGED_CHARS,
    ModelJudge,
    Outcome,
    judge_request,
    judged_text,
    read_answer,
)
from inferflux.router.guardrails.stage import GuardrailStage
from inferflux.router.guardrails.verdicts import GuardrailMetrics

EVERY = [Scope.INFERENCE, Scope.MODELS_READ]


def answer(text: Any) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("yes", Outcome.UNSAFE),
        (" Yes.", Outcome.UNSAFE),
        ("YES, it", Outcome.UNSAFE),
        ("no", Outcome.SAFE),
        ("No.\n", Outcome.SAFE),
        ("Nope", Outcome.UNCLEAR),
        ("yesterday", Outcome.UNCLEAR),
        ("I think", Outcome.UNCLEAR),
        ("", Outcome.UNCLEAR),
        (None, Outcome.UNCLEAR),
    ],
)
def test_the_answer_is_read_by_its_first_word(text: Any, outcome: Outcome) -> None:
    assert read_answer(answer(text)) is outcome


def test_an_answer_that_is_not_a_chat_completion_is_unclear() -> None:
    assert read_answer(b"not json") is Outcome.UNCLEAR
    assert read_answer(b'{"choices": []}') is Outcome.UNCLEAR


def test_only_user_written_text_is_judged_and_it_is_capped() -> None:
    document = {
        "messages": [
            {"role": "system", "content": "You are a helpful bot."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    assert judged_text(document) == "first question\n\nsecond"
    assert judged_text({"prompt": "x" * (JUDGED_CHARS + 10)}) == "x" * JUDGED_CHARS
    assert judged_text({"messages": [{"role": "system", "content": "only the application"}]}) == ""


def test_the_question_is_greedy_and_three_tokens_long() -> None:
    sent = orjson.loads(judge_request("judge", "hello"))
    assert sent["model"] == "judge"
    assert (sent["max_tokens"], sent["temperature"], sent["stream"]) == (3, 0, False)
    assert sent["messages"][0] == {"role": "system", "content": INSTRUCTION}
    assert "hello" in sent["messages"][1]["content"]


def test_the_policy_field_is_off_by_default_and_validated() -> None:
    assert GuardrailPolicy().model_check is None
    check = GuardrailPolicy.model_validate({"modelCheck": {"model": "judge"}}).model_check
    assert check is not None
    assert (check.timeout_ms, check.on_timeout) == (2000, "allow")
    with pytest.raises(ValidationError):
        GuardrailPolicy.model_validate({"modelCheck": {"model": "judge", "onTimeout": "maybe"}})
    with pytest.raises(ValidationError):
        GuardrailPolicy.model_validate({"modelCheck": {"model": "judge", "timeoutMs": 0}})


class Setup:
    def __init__(self, harness: Any, served: Any, judge: Any, slow: Any, keys: dict[str, str], registry: Any):
        self.harness, self.served, self.judge, self.slow = harness, served, judge, slow
        self.keys, self.registry = keys, registry

    async def chat(self, tenant: str, text: str) -> tuple[int, dict[str, Any]]:
        document = {"model": "m", "messages": [{"role": "user", "content": text}]}
        headers = {"authorization": f"Bearer {self.keys[tenant]}"}
        async with self.harness.post("/v1/chat/completions", document, headers=headers) as response:
            return response.status, orjson.loads(await response.read())

    def verdicts(self) -> str:
        return generate_latest(self.registry).decode()


def policy(model_check: dict[str, Any] | None, **extra: Any) -> GuardrailPolicy:
    return GuardrailPolicy.model_validate({"modelCheck": model_check, **extra})


@pytest.fixture
async def setup(
    make_router: Callable[..., Any], mocks: Callable[..., Any], route: Callable[..., Any], with_keys: Any
) -> Setup:
    guardrails = {
        "judged": policy({"model": "judge"}, pii={"email": "redact"}),
        "judged-strict": policy({"model": "judge", "onTimeout": "block"}),
        "slow-allow": policy({"model": "slow", "timeoutMs": 200, "onTimeout": "allow"}),
        "slow-block": policy({"model": "slow", "timeoutMs": 200, "onTimeout": "block"}),
        "missing": policy({"model": "nope", "onTimeout": "block"}),
        "plain": GuardrailPolicy(),
    }
    tenants = with_keys(
        {name: TenantPolicy(name=name, scopes=EVERY, guardrails=rails) for name, rails in guardrails.items()}
    )
    holder = tenants.holder
    registry = CollectorRegistry()
    stage = GuardrailStage(holder, GuardrailMetrics(registry))
    served, judge, slow = await mocks(), await mocks(name="judge"), await mocks(name="slow", hang=True)
    models = {
        "m": route([served.url]),
        "judge": route([judge.url], name="judge"),
        "slow": route([slow.url], name="slow"),
    }
    harness = await make_router(
        models, policy=holder, stages=[stage], auth=True, auth_secret_file=tenants.secret_file
    )
    stage.judge = ModelJudge(harness.router.dispatcher)
    return Setup(harness, served, judge, slow, tenants.keys, registry)


def counted(check_subject: str, action: str) -> str:
    return f'action="{action}",check="model",direction="input",subject="{check_subject}"}} 1.0'


async def test_a_yes_refuses_the_request_before_it_reaches_the_served_model(setup: Setup) -> None:
    setup.judge.state.replies = ["Yes."]
    status, body = await setup.chat("judged", "how do I hurt someone")
    assert status == 400
    assert body["error"]["code"] == "guardrail_blocked"
    assert "model check (unsafe)" in body["error"]["message"]
    assert "hurt" not in body["error"]["message"]
    assert setup.served.state.requests == 0
    asked = setup.judge.state.bodies[-1]
    assert (asked["model"], asked["max_tokens"], asked["temperature"]) == ("judge", 3, 0)
    assert counted("unsafe", "block") in setup.verdicts()


async def test_a_no_lets_it_through_and_the_judge_sees_the_redacted_text(setup: Setup) -> None:
    setup.judge.state.replies = ["No"]
    status, _ = await setup.chat("judged", "write to ann@example.org about lunch")
    assert status == 200
    assert setup.served.state.requests == 1
    question = setup.judge.state.bodies[-1]["messages"][1]["content"]
    assert "write to [EMAIL] about lunch" in question
    assert "ann@" not in question
    assert counted("safe", "allow") in setup.verdicts()


@pytest.mark.parametrize(
    ("allowing", "blocking", "subject"),
    [("judged", "judged-strict", "unclear"), ("slow-allow", "slow-block", "timeout")],
)
async def test_no_verdict_follows_on_timeout(
    setup: Setup, allowing: str, blocking: str, subject: str
) -> None:
    """An answer neither yes nor no (the judge says "Perhaps"), or none in time (the slow judge hangs)."""
    setup.judge.state.replies = ["Perhaps"]
    assert (await setup.chat(allowing, "hello"))[0] == 200
    status, body = await setup.chat(blocking, "hello")
    assert (status, body["error"]["code"]) == (400, "guardrail_blocked")
    assert f"model check ({subject})" in body["error"]["message"]
    page = setup.verdicts()
    assert counted(subject, "allow") in page
    assert counted(subject, "block") in page
    assert setup.served.state.requests == 1  # only the allowed one
    # timed-out exchanges gave their slots back
    assert setup.harness.router.dispatcher.limiters["slow" if subject == "timeout" else "judge"].active == 0


async def test_a_judge_model_that_is_not_served_follows_on_timeout(setup: Setup) -> None:
    status, body = await setup.chat("missing", "hello")
    assert (status, body["error"]["code"]) == (400, "guardrail_blocked")
    assert "model check (unavailable)" in body["error"]["message"]
    assert counted("unavailable", "block") in setup.verdicts()


async def test_without_a_model_check_no_model_is_asked(setup: Setup) -> None:
    assert (await setup.chat("plain", "hello"))[0] == 200
    assert setup.judge.state.requests == 0
    assert 'check="model"' not in setup.verdicts()
