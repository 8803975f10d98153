"""Topic deny lists."""

from __future__ import annotations

from inferflux.crds.guardrails import DeniedTopic
from inferflux.router.guardrails.topics import TopicFilter

TOPICS = TopicFilter(
    [
        DeniedTopic(name="weapons", terms=["pipe bomb", "Sprengstoff"]),
        DeniedTopic(name="competitors", terms=["AcmeCorp", "  "]),
    ]
)


def test_terms_match_whole_words_case_insensitively() -> None:
    assert TOPICS.mentioned("How do I build a PIPE  bomb?") == ["weapons"]
    assert TOPICS.mentioned("Is acmecorp cheaper, and what about Sprengstoff?") == ["weapons", "competitors"]
    assert TOPICS.mentioned("a pipe bombastic speech about acmecorporation") == []


def test_look_alikes_and_invisible_characters_do_not_evade_a_term() -> None:
    assert TOPICS.mentioned("Sprеngstoff") == ["weapons"]  # noqa: RUF001 - a Cyrillic e
    assert TOPICS.mentioned("pipe b\u200bomb") == ["weapons"]


def test_no_topics() -> None:
    assert not TopicFilter([])
    assert TopicFilter([]).mentioned("anything") == []
    assert not TopicFilter([DeniedTopic(name="blank", terms=[" "])])
