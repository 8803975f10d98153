"""The labelled corpus: recall >= 0.98 and a false-positive rate <= 1 % for every entity type."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from inferflux.crds.guardrails import EntityType

_spec = importlib.util.spec_from_file_location("guardrail_corpus", Path(__file__).with_name("corpus.py"))
assert _spec
assert _spec.loader
corpus = importlib.util.module_from_spec(_spec)
sys.modules["guardrail_corpus"] = corpus
_spec.loader.exec_module(corpus)

LINES = corpus.load()
SCORES = corpus.score(LINES)


def test_the_corpus_is_large_multilingual_and_has_near_misses() -> None:
    assert len(LINES) >= 300
    assert {"en", "de", "fr", "es", "it", "nl"} <= {line.lang for line in LINES}
    assert sum(1 for line in LINES if not line.labels) >= 100
    for entity in EntityType:
        assert SCORES[entity].labelled >= 30, entity


@pytest.mark.parametrize("entity", list(EntityType), ids=lambda e: e.value)
def test_recall(entity: EntityType) -> None:
    score = SCORES[entity]
    assert score.recall >= 0.98, score.misses


@pytest.mark.parametrize("entity", list(EntityType), ids=lambda e: e.value)
def test_false_positive_rate(entity: EntityType) -> None:
    score = SCORES[entity]
    assert score.fp_rate <= 0.01, score.false_positives
