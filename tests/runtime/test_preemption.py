"""Priority in the engine: the choice (pure) and, on the real model, a preempted stream that resumes
with exactly the tokens it would have produced alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import llama_cpp as llama
import pytest

from inferflux.runtime.chat import ChatTemplate
from inferflux.runtime.engine import Engine, Finish, Job
from inferflux.runtime.metrics import RuntimeMetrics
from inferflux.runtime.model import Model
from inferflux.runtime.preemption import (
    Running,
    Waiting,
    abandons_step,
    next_waiting,
    parse_priority,
    step_floor,
    victim,
)
from inferflux.runtime.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0)
TOKENS = 48


def test_the_highest_priority_waits_least_and_parked_ones_go_first_within_a_priority() -> None:
    waiting = [Waiting(0, 5, False), Waiting(3, 9, False), Waiting(3, 2, True), Waiting(-1, 0, True)]
    assert next_waiting(waiting) == 2  # priority 3, parked before queued
    assert next_waiting([Waiting(0, 7, False), Waiting(0, 4, False)]) == 1  # then the oldest
    assert next_waiting([]) is None


def test_only_a_strictly_lower_priority_yields_its_slot_and_the_newest_of_them() -> None:
    running = [Running(0, 0, 1), Running(1, -5, 2), Running(2, -5, 3)]
    assert victim(running, 1) == 2  # lowest priority, newest first: least work lost
    assert victim(running, -5) is None  # equal priority never preempts
    assert victim([], 10) is None


def test_priorities_come_from_a_header_clamped_and_checked() -> None:
    assert parse_priority(None) == 0
    assert parse_priority(" -3 ") == -3
    assert parse_priority("99999") == 1000
    with pytest.raises(ValueError):
        parse_priority("high")


def stepped_engine(path: Path, parallel: int) -> Iterator[Engine]:
    """The chat model with ``parallel`` slots, driven step by step by the test (its thread is not started)."""
    model = Model(path)
    engine = Engine(
        model, context_size=2048, parallel=parallel, threads=1, batch_size=256, metrics=RuntimeMetrics()
    )
    yield engine
    engine.close()
    model.close()


@pytest.fixture(scope="module")
def engine(chat_model_path: Path) -> Iterator[Engine]:
    """The chat model with ONE slot."""
    yield from stepped_engine(chat_model_path, 1)


def job(engine: Engine, question: str, priority: int = 0) -> Job:
    model = engine.model
    template = ChatTemplate(
        model.metadata("tokenizer.chat_template"),
        model.token_text(model.bos_id),
        model.token_text(model.eos_id),
    )
    prompt = model.tokenize(template.render([{"role": "user", "content": question}]))
    return Job(prompt=prompt, max_tokens=TOKENS, sampling=GREEDY, priority=priority)


def run(
    engine: Engine, jobs: list[Job], before_step: dict[int, Job] | None = None
) -> list[tuple[Job, str | Finish]]:
    """Step until every job finished (``before_step``: submit a job before step N); all events in order."""
    for item in jobs:
        engine.submit(item)
    events: list[tuple[Job, str | Finish]] = []
    pending = dict(before_step or {})
    for number in range(2000):
        if number in pending:
            engine.submit(pending.pop(number))
        outbox: list[tuple[Job, str | Finish]] = []
        stepped = engine.step(outbox)
        events += outbox
        if not stepped and not pending and not engine.busy:
            return events
    raise AssertionError("the engine did not finish within 2000 steps")


def text_of(events: list[tuple[Job, str | Finish]], which: Job) -> str:
    return "".join(event for item, event in events if item is which and isinstance(event, str))


def finish_index(events: list[tuple[Job, str | Finish]], which: Job) -> int:
    return next(i for i, (item, event) in enumerate(events) if item is which and isinstance(event, Finish))


LOW = "Write a long story about a lighthouse keeper and the sea."
HIGH = "What is the capital of France?"


def alone(engine: Engine, question: str) -> str:
    """The greedy answer to ``question`` with the engine to itself."""
    only = job(engine, question)
    return text_of(run(engine, [only]), only)


def test_a_preempted_stream_resumes_with_exactly_its_own_tokens(engine: Engine) -> None:
    low_alone, high_alone = alone(engine, LOW), alone(engine, HIGH)
    assert len(low_alone) > 40  # a long answer, still streaming when the high one arrives

    metrics = engine.metrics
    preempted, resumed = metrics.preempted._value.get(), metrics.resumed._value.get()
    low, high = job(engine, LOW, priority=-5), job(engine, HIGH, priority=5)
    events = run(engine, [low], before_step={8: high})  # the low one is decoding by step 8
    assert metrics.preempted._value.get() == preempted + 1
    assert metrics.resumed._value.get() == resumed + 1
    assert finish_index(events, high) < finish_index(events, low), "the high priority one went first"
    first_high = next(i for i, (item, _) in enumerate(events) if item is high)
    assert any(item is low for item, _ in events[:first_high]), "the low one had started streaming"
    assert text_of(events, low) == low_alone, "nothing lost, nothing repeated, nothing changed"
    assert text_of(events, high) == high_alone


def start_decoding(engine: Engine, low: Job) -> tuple[list[tuple[Job, str | Finish]], int, int]:
    """Submit ``low`` and step until it decodes: its events so far, its slot, its tokens in that slot."""
    engine.submit(low)
    events: list[tuple[Job, str | Finish]] = []
    for _ in range(6):
        engine.step(events)
    assert text_of(events, low), "the low one is decoding"
    slot = next(slot for slot, state in enumerate(engine.active) if state is not None)
    return events, slot, len(engine.slot_tokens[slot])


def test_a_step_of_lower_sequences_is_abandoned_for_a_higher_job_and_redone_exactly(engine: Engine) -> None:
    """A high job submitted while a step of only lower sequences decodes stops that step part-way
    (it does not wait for it); the step is redone later and the low stream loses nothing."""
    low_alone, high_alone = alone(engine, LOW), alone(engine, HIGH)
    abandoned = engine.metrics.steps_abandoned._value.get()
    low, high = job(engine, LOW, priority=-5), job(engine, HIGH, priority=5)
    events, slot, before = start_decoding(engine, low)

    stepped: list[bool] = []
    outbox: list[tuple[Job, str | Finish]] = []
    decoding = threading.Thread(target=lambda: stepped.append(engine.step(outbox)))
    decoding.start()
    deadline = time.monotonic() + 30
    while engine._step_top is None:  # the step is under way (its batch is built)
        assert decoding.is_alive(), "the step ended before it was watched"
        assert time.monotonic() < deadline
        time.sleep(0.0001)
    engine.submit(high)
    decoding.join(30)

    assert stepped == [True]
    assert engine.metrics.steps_abandoned._value.get() == abandoned + 1
    assert outbox == [], "an abandoned step delivers nothing"
    assert len(engine.slot_tokens[slot]) == before, "the low one's token was taken back"
    assert llama.llama_memory_seq_pos_max(engine.memory, slot) + 1 == before, "and its KV entry too"
    events += run(engine, [])
    assert finish_index(events, high) < finish_index(events, low)
    assert text_of(events, low) == low_alone, "nothing lost, nothing repeated"
    assert text_of(events, high) == high_alone


def test_only_a_job_that_outranks_the_whole_step_abandons_it() -> None:
    assert abandons_step(-5, 5)
    assert not abandons_step(None, 5)  # no step running
    assert not abandons_step(0, 0)  # equal priorities share steps as before
    assert not abandons_step(5, 0)


def test_a_resumed_stream_whose_parked_cache_was_dropped_recomputes_it_exactly(engine: Engine) -> None:
    low_alone = alone(engine, LOW)
    low, high = job(engine, LOW, priority=-5), job(engine, HIGH, priority=5)
    engine.submit(low)
    events: list[tuple[Job, str | Finish]] = []
    for _ in range(8):
        engine.step(events)
    engine.submit(high)
    engine.step(events)  # admits the high one: the low one is parked
    assert engine.parked
    assert engine.forget_parked_kv() == 1
    events += run(engine, [])
    assert text_of(events, low) == low_alone
    # Not compared with its solo run: freeing the parked cells moves where the high one's KV lands,
    # and llama.cpp sums attention in cell order, so a greedy near-tie may go the other way.
    assert [event.reason for item, event in events if item is high and isinstance(event, Finish)] == [
        "length"
    ]
    assert text_of(events, high)


def test_cancelling_a_parked_stream_frees_its_cache_at_once(engine: Engine) -> None:
    low, high = job(engine, LOW, priority=-5), job(engine, HIGH, priority=5)
    engine.submit(low)
    events: list[tuple[Job, str | Finish]] = []
    for _ in range(8):
        engine.step(events)
    engine.submit(high)
    engine.step(events)
    free_before = len(engine.free_parking)
    low.cancel()
    engine.step(events)
    assert not engine.parked
    assert len(engine.free_parking) == free_before + 1
    assert [event.reason for item, event in events if item is low and isinstance(event, Finish)] == [
        "cancelled"
    ]
    run(engine, [])


def test_the_floor_of_a_step_is_the_highest_priority_still_prefilling() -> None:
    assert step_floor([]) is None  # nothing prefilling: everyone steps
    assert step_floor([-10, 0]) == 0


@pytest.fixture(scope="module")
def two_slots(chat_model_path: Path) -> Iterator[Engine]:
    """The chat model with two slots."""
    yield from stepped_engine(chat_model_path, 2)


def test_a_lower_priority_stream_sits_out_the_steps_that_prefill_a_higher_one(two_slots: Engine) -> None:
    engine = two_slots
    low, high = job(engine, LOW, priority=-10), job(engine, HIGH)
    events, low_slot, before = start_decoding(engine, low)
    held = engine.metrics.held._value.get()

    engine.submit(high)
    outbox: list[tuple[Job, str | Finish]] = []
    engine.step(outbox)  # a free slot: no preemption, but this step is the high one's prefill
    prefilled = len(high.prompt) - high.timeline.reused  # a cached prefix is not prefilled again
    assert engine.batch.n_tokens == prefilled, "only the high prompt was in the step"
    assert len(engine.slot_tokens[low_slot]) == before, "the low one did not advance"
    assert [item for item, _ in outbox] == [high], "the high one's first token, and nothing of the low one"
    assert engine.metrics.held._value.get() == held + 1

    outbox = []
    engine.step(outbox)  # both decode again
    assert engine.batch.n_tokens == 2
    events += run(engine, [])
    assert [e.reason for item, e in events if item is low and isinstance(e, Finish)] == ["length"]


def test_a_lower_priority_stream_sits_out_a_higher_ones_steps_until_it_shows_text(two_slots: Engine) -> None:
    """A higher job whose first tokens are held back (they could start one of its stop strings) has
    shown its client nothing after its prefill: the lower stream keeps sitting out its steps."""
    engine = two_slots
    answer = alone(engine, HIGH)
    words = answer.split(" ")
    assert len(words) >= 4, answer
    # A stop string that agrees with the answer's first three words and then differs: those words
    # are held back as its possible start, and shown only when the answer parts from it.
    high = job(engine, HIGH)
    high.stops = (" ".join(words[:3]) + " \x00never",)
    low = job(engine, LOW, priority=-10)
    events, low_slot, before = start_decoding(engine, low)

    engine.submit(high)
    unshown_steps = 0
    while True:
        outbox: list[tuple[Job, str | Finish]] = []
        engine.step(outbox)
        events += outbox
        if any(item is high for item, _ in outbox):
            break
        assert len(engine.slot_tokens[low_slot]) == before, "the low one stepped beside the unshown high one"
        unshown_steps += 1
    assert unshown_steps >= 2, "the high one's first tokens were held back for more than its prefill step"
    events += run(engine, [])
    assert text_of(events, high) == answer, "held back, then shown whole"
    assert [e.reason for item, e in events if item is low and isinstance(e, Finish)] == ["length"]


def test_an_equal_priority_prefill_shares_the_step(two_slots: Engine) -> None:
    first, second = job(engine=two_slots, question=LOW), job(engine=two_slots, question=HIGH)
    two_slots.submit(first)
    events: list[tuple[Job, str | Finish]] = []
    for _ in range(6):
        two_slots.step(events)
    two_slots.submit(second)
    two_slots.step(events)
    prefilled = len(second.prompt) - second.timeline.reused
    assert two_slots.batch.n_tokens == prefilled + 1, "its prompt and the other's next token"
    run(two_slots, [])
