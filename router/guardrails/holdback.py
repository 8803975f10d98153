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
from dataclasses import dataclass

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
_SEPARATORS_IN_GROUP = "/-+.\u2013"  # the last is an en dash
# The group before a position: the run of non-space characters that ends there, cut at one character
# more than a group may have (searched in a window that ends there).
_GROUP_BEFORE = re.compile(rf"\S{{1,{GROUP_MAX + 1}}}\Z")


def _number_group(group: str) -> bool:
    """True when ``group`` may be one group of a number written in groups: short, with a digit, a
    few capitals (the bank code of an IBAN, the prefix of a UK NINO), or a separator standing
    between spaces ("030 / 1234 5678")."""
    core = group.strip("()[]<>\"'")
    if len(group) > GROUP_MAX or not core:
        return False
    if core.isalpha():  # a word (most groups in prose): no digit, so only a few capitals qualify
        return len(core) <= 4 and core.isupper()
    if not core.strip(_SEPARATORS_IN_GROUP):  # separators only
        return True
    return any(char.isdigit() for char in core) or (len(core) <= 4 and core.isalnum() and core.isupper())


@dataclass(slots=True)
class Walk:
    """What the last `safe_cut` over a growing text found, so that the next one only walks the new
    part: the text's length then, where its trailing run of non-space characters started, and where
    the chain of number groups before that run started. Positions are in the text the walk saw."""

    end: int = 0
    run: int = 0
    chain: int = 0

    def shift(self, cut: int) -> None:
        """The first ``cut`` characters were released: the text now starts at ``cut``.

        A chain cut into (the `HOLD_MAX` bound released part of it) is taken to reach the new start:
        that holds the rest, where a fresh walk might stop at the truncated group and release more."""
        self.end, self.run, self.chain = self.end - cut, self.run - cut, max(self.chain - cut, 0)


def safe_cut(text: str, walk: Walk | None = None) -> int:
    """How much of ``text`` can be released without splitting anything that may still grow into an
    entity when more text comes.

    Given the `Walk` of the previous call on a prefix of ``text`` (the same text with more appended),
    only the appended part is walked, which keeps filtering a stream linear in its length; the walk
    is updated for the next call."""
    previous = walk if walk is not None and 0 <= walk.run <= walk.end <= len(text) else None
    run = len(text)
    stop = previous.end if previous is not None else 0
    while run > stop and not text[run - 1].isspace():
        run -= 1
    if previous is not None and run == stop:
        run = previous.run  # no space since the last walk: the same trailing run, grown
    start = run
    # Short groups with digits before it, one separator apart, belong to the same number.
    while start >= 2 and text[start - 1] in _GROUP_SEPARATORS and not text[start - 2].isspace():
        if previous is not None and start == previous.run:
            start = previous.chain  # the chain behind this point was walked last time
            break
        # one character past the longest group is enough to know this one is too long
        group = _GROUP_BEFORE.search(text, max(0, start - 2 - GROUP_MAX), start - 1)
        assert group is not None  # text[start - 2] is not a space
        group_start = group.start()
        if not _number_group(group.group()):
            break
        start = group_start
    if walk is not None:
        walk.end, walk.run, walk.chain = len(text), run, start
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
        self.walk = Walk()

    def feed(self, text: str) -> Applied:
        """Take the next piece of the stream; return what can be released now, actions applied."""
        self.pending += text
        return self._release(final=False)

    def flush(self) -> Applied:
        """The stream ended: release everything still held."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> Applied:
        pending = self.pending
        cut = len(pending) if final else safe_cut(pending, self.walk)
        if cut == 0:
            return Applied("")
        offset = len(self.context)
        found = self.detector.find(self.context + pending)
        if found:
            spans = [
                Span(span.entity, max(0, span.start - offset), span.end - offset)
                for span in found
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
        else:  # nothing found (most of the time): released as it is
            released = pending[:cut]
            applied = Applied(released)
        self.context = (self.context + released)[-CONTEXT:]
        self.pending = pending[cut:]
        self.walk.shift(cut)
        return applied
