"""Filtering streamed text: release what can no longer be part of an entity, hold back the rest.

An answer arrives a token at a time, and an entity may be split across tokens ("alice", ".smith@",
"example.com"). `Holdback` keeps the unreleased tail of the text and releases only up to a safe
cut, never inside something that could still grow into an entity:

- the trailing run of non-space characters (an e-mail, a key, an address has no spaces) is held;
- so are the short groups before it that contain a digit (or are a few capitals), separated by
  single spaces (a card number, an IBAN or a phone number written in groups: "4111 1111 1111 1111");
- a private-key block whose END line has not arrived is held from its BEGIN line;
- a found entity that reaches past the cut moves the cut to its start.

For prose the delay is the last word, one or two tokens. Word-like runs are held to at most
`HOLD_MAX` characters; a key block is held until its END line, or to the end of the answer. The last
`CONTEXT` released characters are kept (in memory only) so that keyword-qualified ids ("BSN ...")
and version strings are judged as they would be in the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.redact import Applied, apply_actions
from inferflux.router.guardrails.spans import Span

HOLD_MAX = 256
CONTEXT = 64
GROUP_MAX = 8
PEM_MARK = "-----BEGIN"
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*-----")
_GROUP_SEPARATORS = " \t\u00a0"
_SEPARATOR_GROUP = frozenset("/-+.\u2013")  # the last is an en dash


def _number_group(group: str) -> bool:
    """True when ``group`` may be one group of a number written in groups: short, with a digit, a
    few capitals (the bank code of an IBAN, the prefix of a UK NINO), or a separator standing
    between spaces ("030 / 1234 5678")."""
    core = group.strip("()[]<>\"'")
    if len(group) > GROUP_MAX or not core:
        return False
    if all(char in _SEPARATOR_GROUP for char in core):
        return True
    return any(char.isdigit() for char in core) or (len(core) <= 4 and core.isalnum() and core.isupper())


def safe_cut(text: str) -> int:
    """How much of ``text`` can be released without splitting anything that may still grow into an
    entity when more text comes."""
    start = len(text)
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    # Short groups with digits before it, one separator apart, belong to the same number.
    while start >= 2 and text[start - 1] in _GROUP_SEPARATORS and not text[start - 2].isspace():
        group_start = start - 1
        while group_start > 0 and not text[group_start - 1].isspace():
            group_start -= 1
        if not _number_group(text[group_start : start - 1]):
            break
        start = group_start
    start = max(start, len(text) - HOLD_MAX)
    begin = text.rfind(PEM_MARK)
    if begin >= 0 and not _PEM_END.search(text, begin):
        start = min(start, begin)
    return start


class Holdback:
    """The PII filter for one stream of text (one choice of one answer)."""

    def __init__(self, detector: Detector, actions: Mapping[EntityType, PiiAction]) -> None:
        self.detector = detector
        self.actions = actions
        self.pending = ""
        self.context = ""

    def feed(self, text: str) -> Applied:
        """Take the next piece of the stream; return what can be released now, actions applied."""
        self.pending += text
        return self._release(final=False)

    def flush(self) -> Applied:
        """The stream ended: release everything still held."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> Applied:
        pending = self.pending
        cut = len(pending) if final else safe_cut(pending)
        if cut == 0:
            return Applied("")
        offset = len(self.context)
        spans = [
            Span(span.entity, max(0, span.start - offset), span.end - offset)
            for span in self.detector.find(self.context + pending)
            if span.end > offset
        ]
        for span in reversed(spans):
            if span.start < cut < span.end:
                cut = span.start
        if cut == 0:
            return Applied("")
        released = pending[:cut]
        applied = apply_actions(released, [s for s in spans if s.end <= cut], self.actions)
        if applied.blocked:  # nothing of a blocked answer goes out, not even what came before
            applied = Applied("", applied.hits)
        self.context = (self.context + released)[-CONTEXT:]
        self.pending = pending[cut:]
        return applied
