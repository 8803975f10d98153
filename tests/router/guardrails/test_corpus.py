"""The labelled corpus: recall >= 0.98 and a false-positive rate <= 1 % for every entity type."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.crds.guardrails import EntityType


@pytest.fixture(scope="module")
def scores(corpus: Any) -> Any:
    return corpus.score(corpus.load())


def test_the_corpus_is_large_multilingual_and_has_near_misses(corpus: Any, scores: Any) -> None:
    lines = corpus.load()
    assert len(lines) >= 300
    assert {"en", "de", "fr", "es", "it", "nl"} <= {line.lang for line in lines}
    assert sum(1 for line in lines if not line.labels) >= 100
    for entity in EntityType:
        assert scores[entity].labelled >= 30, entity


@pytest.mark.parametrize("entity", list(EntityType), ids=lambda e: e.value)
def test_recall(entity: EntityType, scores: Any) -> None:
    score = scores[entity]
    assert score.recall >= 0.98, score.misses


@pytest.mark.parametrize("entity", list(EntityType), ids=lambda e: e.value)
def test_false_positive_rate(entity: EntityType, scores: Any) -> None:
    score = scores[entity]
    assert score.fp_rate <= 0.01, score.false_positives
