"""A tenant's guardrails, compiled: check a request's input, filter its answer.

`Guard` is built once per `GuardrailPolicy` (the router rebuilds it only when the tenant's policy
changes) and holds the compiled detector, topic filter and actions. `check_input` runs, in order:

1. the size limit (413 ``input_too_large``), before anything is scanned;
2. per piece of text: the anti-injection rules on untrusted text (``sanitise`` strips the matched
   spans and refuses when several distinct rules match; ``block`` refuses on any rule; invisible
   characters are removed in both cases without refusing), the topic deny list on user-written text,
   then the PII actions on all of it;
3. one 400 ``guardrail_blocked`` naming everything that was refused (entity types, topic names, rule
   names; never the text).

Every decision is counted in the caller's `Tally`, also when the request is refused, so that the
audit record and the metrics say why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferflux.crds.guardrails import EntityType, GuardrailPolicy, InjectionAction, PiiAction
from inferflux.prompts.rules import RuleSet, default_rules
from inferflux.prompts.safety import SHORT, sanitise_short
from inferflux.prompts.sanitise import Verdict as Sanitised
from inferflux.prompts.sanitise import sanitise
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.redact import apply_actions
from inferflux.router.guardrails.stream import BodyFilter, StreamFilter, filter_body
from inferflux.router.guardrails.texts import Source, rewrite_texts, total_chars
from inferflux.router.guardrails.topics import TopicFilter
from inferflux.router.guardrails.verdicts import Check, Direction, Tally

SIZE_SUBJECT = "max_input_chars"
TOPIC_SOURCES = frozenset({Source.UNTRUSTED, Source.PROMPT})


class Guard:
    """The compiled guardrails of one tenant."""

    def __init__(self, policy: GuardrailPolicy, rules: RuleSet | None = None) -> None:
        self.policy = policy
        self.rules = rules or default_rules()
        self.actions: dict[EntityType, PiiAction] = {entity: policy.pii.of(entity) for entity in EntityType}
        scanned = [entity for entity, action in self.actions.items() if action is not PiiAction.ALLOW]
        self.detector = Detector(scanned, policy.phone_regions)
        self.topics = TopicFilter(policy.denied_topics, self.rules)
        self.injection = InjectionAction(policy.injection)
        # Reasons the sanitiser gives for invisible characters, as opposed to rule names.
        self._hidden = frozenset(self.rules.removed.values())
        self.inert = (
            not scanned
            and not self.topics
            and self.injection is InjectionAction.ALLOW
            and policy.max_input_chars is None
        )

    def check_input(self, document: dict[str, Any], tally: Tally) -> dict[str, Any]:
        """``document`` with the guardrails applied to its text (``document`` itself when nothing
        changed); raises `UpstreamError` when refused."""
        if self.inert:
            return document
        limit = self.policy.max_input_chars
        if limit is not None:
            size = total_chars(document)
            if size > limit:
                tally.add(Direction.INPUT, Check.SIZE, SIZE_SUBJECT, "block")
                raise UpstreamError(
                    ErrorCode.INPUT_TOO_LARGE,
                    f"the input has {size} characters of text; this tenant allows at most {limit}",
                )
        refused: dict[Check, list[str]] = {}
        changed = False

        def refuse(check: Check, subject: str) -> None:
            subjects = refused.setdefault(check, [])
            if subject not in subjects:
                subjects.append(subject)

        def guard_text(text: str, source: Source) -> str:
            nonlocal changed
            original = text
            if source is Source.UNTRUSTED and self.injection is not InjectionAction.ALLOW:
                text = self._injection(text, tally, refuse)
            if source in TOPIC_SOURCES and self.topics:
                for topic in self.topics.mentioned(text):
                    tally.add(Direction.INPUT, Check.TOPIC, topic, "block")
                    refuse(Check.TOPIC, topic)
            applied = apply_actions(text, self.detector.find(text), self.actions)
            for entity, action in applied.hits:
                tally.add(Direction.INPUT, Check.PII, entity.value, action.value)
            for entity in applied.blocked:
                refuse(Check.PII, entity.value)
            changed = changed or applied.text != original
            return applied.text

        cleaned = rewrite_texts(document, guard_text)
        if refused:
            raise UpstreamError(ErrorCode.GUARDRAIL_BLOCKED, refusal_message(refused))
        return cleaned if changed else document

    def _injection(self, text: str, tally: Tally, refuse: Callable[[Check, str], None]) -> str:
        cached = self.rules is default_rules() and len(text) <= SHORT
        outcome = sanitise_short(text) if cached else sanitise(text, self.rules)
        if outcome.verdict is Sanitised.ALLOW:
            return text
        rules = [reason for reason in outcome.reasons if reason not in self._hidden]
        block = outcome.verdict is Sanitised.BLOCKED or (self.injection is InjectionAction.BLOCK and rules)
        action = "block" if block else "sanitise"
        for reason in outcome.reasons:
            tally.add(Direction.INPUT, Check.INJECTION, reason, action)
        if block:
            for rule in rules:
                refuse(Check.INJECTION, rule)
            return text
        return outcome.text

    @property
    def filters_output(self) -> bool:
        """True when answers are scanned."""
        return self.policy.output and bool(self.detector.entities)

    def output_filter(self, tally: Tally, *, stream: bool = True) -> StreamFilter | BodyFilter | None:
        """A filter for one answer (streamed or whole), or None when this tenant's answers are not
        scanned."""
        if not self.filters_output:
            return None
        if stream:
            return StreamFilter(self.detector, self.actions, tally)
        return BodyFilter(self.detector, self.actions, tally)

    def filter_body(self, payload: bytes, tally: Tally) -> bytes:
        """A whole answer with the PII actions applied (unchanged when answers are not scanned)."""
        if not self.filters_output:
            return payload
        return filter_body(payload, self.detector, self.actions, tally)


_WHAT = {Check.PII: "personal data", Check.TOPIC: "topic", Check.INJECTION: "prompt injection"}


def refusal_message(refused: dict[Check, list[str]]) -> str:
    """Why the input was refused: the checks and their subjects, never the text."""
    reasons = "; ".join(f"{_WHAT[check]} ({', '.join(subjects)})" for check, subjects in refused.items())
    return f"input blocked by this tenant's guardrails: {reasons}"
