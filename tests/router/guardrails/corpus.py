"""The labelled PII corpus (corpus/*.jsonl) and how a detector scores on it.

Each line: ``{"lang", "kind": "positive" | "near_miss", "text", "entities": [{"type", "value"}]}``.
A labelled entity is found when the detector reports a span of its type covering exactly its value.
A false positive is a reported span matching no label of its type; a type's false-positive rate is
the share of lines without a label of that type on which the detector reports one. Both the test
(test_corpus.py) and `make bench-guardrails` use this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferflux.crds.guardrails import EntityType
from inferflux.router.guardrails.detect import Detector

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Line:
    lang: str
    kind: str
    text: str
    labels: frozenset[tuple[EntityType, int, int]]
    source: str


def _spans(text: str, entities: list[dict[str, Any]]) -> frozenset[tuple[EntityType, int, int]]:
    spans = set()
    for entity in entities:
        start = text.index(entity["value"])
        spans.add((EntityType(entity["type"]), start, start + len(entity["value"])))
    return frozenset(spans)


def load() -> list[Line]:
    lines = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            item = json.loads(raw)
            lines.append(
                Line(
                    item["lang"],
                    item["kind"],
                    item["text"],
                    _spans(item["text"], item["entities"]),
                    f"{path.name}:{number}",
                )
            )
    return lines


@dataclass
class Score:
    labelled: int = 0
    found: int = 0
    negatives: int = 0  # lines without a label of this type
    false_lines: int = 0  # lines with a reported span of this type matching no label
    misses: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def fp_rate(self) -> float:
        return self.false_lines / self.negatives if self.negatives else 0.0


def score(lines: list[Line], detector: Detector | None = None) -> dict[EntityType, Score]:
    detector = detector or Detector(list(EntityType))
    scores = {entity: Score() for entity in EntityType}
    for line in lines:
        reported = {(span.entity, span.start, span.end) for span in detector.find(line.text)}
        for entity, s in scores.items():
            labels = {label for label in line.labels if label[0] is entity}
            found = {span for span in reported if span[0] is entity}
            s.labelled += len(labels)
            s.found += len(labels & found)
            s.misses += [f"{line.source}: {line.text[a:b]!r}" for _, a, b in labels - found]
            extra = found - labels
            if not labels:
                s.negatives += 1
            if extra:
                s.false_lines += 1
                s.false_positives += [f"{line.source}: {line.text[a:b]!r}" for _, a, b in extra]
    return scores


def table(scores: dict[EntityType, Score]) -> str:
    rows = [
        "| entity | labelled | found | recall | lines without it | false-positive lines | FP rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entity, s in scores.items():
        cells = [entity.value, s.labelled, s.found, f"{s.recall:.3f}", s.negatives, s.false_lines]
        rows.append("| " + " | ".join(map(str, cells)) + f" | {s.fp_rate:.2%} |")
    return "\n".join(rows)
