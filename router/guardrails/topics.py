"""Topic deny lists: a tenant names topics, each with its terms; text mentioning a term is refused.

Terms match whole words, case-insensitively, on the same folded skeleton the anti-injection rules
use (NFKC, lower case, Cyrillic and Greek look-alikes read as Latin, invisible characters ignored),
so "weapons" spelt with a Cyrillic letter e or with a zero-width space inside still matches.
Whitespace inside a term matches any run of whitespace. Only the topic's name is ever reported,
never the term or the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from inferflux.crds.guardrails import DeniedTopic
from inferflux.prompts.rules import RuleSet, default_rules
from inferflux.prompts.sanitise import skeleton


def _term_pattern(term: str, rules: RuleSet) -> str:
    folded, _ = skeleton(term.strip(), rules)
    words = [re.escape(word) for word in folded.split()]
    return r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"


class TopicFilter:
    """Which denied topics a text mentions."""

    def __init__(self, topics: Sequence[DeniedTopic], rules: RuleSet | None = None) -> None:
        self.rules = rules or default_rules()
        compiled: list[tuple[str, re.Pattern[str]]] = []
        for topic in topics:
            terms = [_term_pattern(term, self.rules) for term in topic.terms if term.strip()]
            if terms:
                compiled.append((topic.name, re.compile("|".join(terms))))
        self._topics = tuple(compiled)

    def __bool__(self) -> bool:
        return bool(self._topics)

    def mentioned(self, text: str) -> list[str]:
        """Names of the topics ``text`` mentions, in declaration order."""
        if not self._topics:
            return []
        folded, _ = skeleton(text, self.rules)
        return [name for name, pattern in self._topics if pattern.search(folded)]
