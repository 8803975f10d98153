"""The injection rules are data: a new pattern needs no code, and a malformed file fails clearly."""

from __future__ import annotations

import pytest

from inferflux.prompts.rules import RulesError, code_points, default_rules, parse_rules
from inferflux.prompts.sanitise import Verdict, sanitise

CUSTOM = """
removed: {zero_width: ["200B"]}
confusables: {o: "0"}
block_after: 2
rules:
  - name: secret_word
    pattern: 'open sesame'
"""


def test_a_new_pattern_applies_without_code() -> None:
    rules = parse_rules(CUSTOM)
    outcome = sanitise("please 0pen\u200b ses\u200bame now", rules)
    assert outcome.verdict is Verdict.SANITISED
    assert outcome.reasons == ("zero_width", "secret_word")
    assert outcome.text == "please now"
    assert sanitise("please open sesame now").verdict is Verdict.ALLOW  # not in the default rules


def test_block_after_comes_from_the_data() -> None:
    rules = parse_rules(CUSTOM + "  - name: other\n    pattern: 'abracadabra'\n")
    assert sanitise("open sesame abracadabra", rules).verdict is Verdict.BLOCKED


def test_code_point_ranges() -> None:
    assert code_points(["200B", "2060-2062"]) == {0x200B, 0x2060, 0x2061, 0x2062}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: []\n", "removed"),
        ("removed: {}\nrules: [{name: x, pattern: '('}]\n", "missing"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_malformed_rules_fail_clearly(text: str, problem: str) -> None:
    with pytest.raises(RulesError, match=problem):
        parse_rules(text)


def test_shipped_rules_load() -> None:
    rules = default_rules()
    assert {r.name for r in rules.rules} >= {"template_token", "role_header", "ignore_instructions"}
    assert 0x200B in rules.removed
