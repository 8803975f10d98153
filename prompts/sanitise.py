"""Anti-injection sanitisation of user text before it is placed into a prompt.

Three defences, all driven by ``injection_rules.yaml``:

- *Role isolation*: user text only ever becomes a ``user`` message (see ``user_message``), and the
  markers that could make a model read it as another role (chat-template control tokens, fake
  ``System:`` headers, ``<system>`` tags) are removed from it.
- *Meta-instruction stripping*: spans such as "ignore previous instructions" are removed.
- *Unicode tricks*: invisible characters are removed, and matching runs on a folded skeleton in which
  homoglyphs, fullwidth and mathematical letters read as plain Latin, so disguises do not evade it.

Text that matches nothing is returned unchanged. Each call yields a verdict and the names of the
rules that fired, for the audit log; the text itself is never logged, only its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from inferflux.prompts.rules import RuleSet, default_rules


class Verdict(StrEnum):
    """What sanitisation decided about one text."""

    ALLOW = "allow"  # unchanged
    SANITISED = "sanitised"  # something was removed; the rest is safe to use
    BLOCKED = "blocked"  # too many distinct attacks: refuse the text


@dataclass(frozen=True)
class Sanitised:
    """The outcome for one text: the safe text, the verdict, and why (for audit)."""

    text: str
    verdict: Verdict
    reasons: tuple[str, ...]
    input_sha256: str

    def audit(self) -> dict[str, object]:
        """A record for the audit log: no text, only its hash."""
        reasons = list(self.reasons)
        return {"verdict": self.verdict.value, "reasons": reasons, "input_sha256": self.input_sha256}


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ANY = re.compile(r".", re.DOTALL)


def skeleton(text: str, rules: RuleSet) -> tuple[str, list[int]]:
    """The folded text that rules match on, and for each of its characters the index it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    folded: list[str] = []
    origin: list[int] = []
    position = 0
    # ASCII runs fold by lower() alone (NFKC leaves them as they are) unless a confusable is ASCII,
    # so only the other characters are folded one by one: European text is mostly ASCII.
    pattern = _ANY if any(char.isascii() for char in rules.confusables) else _NON_ASCII
    for match in pattern.finditer(text):
        index = match.start()
        if index > position:
            folded.append(text[position:index].lower())
            origin.extend(range(position, index))
        position = index + 1
        point = ord(match.group())
        if point in rules.removed or point in rules.ignored:
            continue
        for piece in unicodedata.normalize("NFKC", match.group()).lower():
            folded.append(rules.confusables.get(piece, piece))
            origin.append(index)
    if position < len(text):
        folded.append(text[position:].lower())
        origin.extend(range(position, len(text)))
    return "".join(folded), origin


def matched_spans(text: str, rules: RuleSet) -> tuple[list[tuple[int, int]], list[str]]:
    """Spans of ``text`` (start, end) that rules match, merged, and the names of those rules."""
    folded, origin = skeleton(text, rules)
    spans: list[tuple[int, int]] = []
    names: list[str] = []
    for rule in rules.rules:
        for match in rule.pattern.finditer(folded):
            if match.end() > match.start():
                spans.append((origin[match.start()], origin[match.end() - 1] + 1))
                names.append(rule.name)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged, names


def cut(text: str, spans: list[tuple[int, int]], removed: dict[int, str]) -> str:
    """``text`` without the spans and without removed code points."""
    kept = ""
    position = 0
    for start, end in [*spans, (len(text), len(text))]:
        piece = text[position:start]
        # Join the two sides of a cut with one space, not two.
        kept += piece[1:] if kept.endswith(" ") and piece.startswith(" ") else piece
        position = end
    return "".join(char for char in kept if ord(char) not in removed)


def sanitise(text: str, rules: RuleSet | None = None) -> Sanitised:
    """Make ``text`` safe to place into a prompt as user content."""
    rules = rules or default_rules()
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    removed = rules.removed
    # Only non-ASCII characters can be removed ones (unless custom rules say otherwise): look at those.
    suspects = text if any(point < 0x80 for point in removed) else _NON_ASCII.findall(text)
    hidden = [] if text.isascii() else sorted({removed[ord(c)] for c in suspects if ord(c) in removed})
    spans, names = matched_spans(text, rules)
    reasons = tuple(dict.fromkeys([*hidden, *names]))
    if not reasons:
        return Sanitised(text, Verdict.ALLOW, (), digest)
    verdict = Verdict.BLOCKED if len(set(names)) >= rules.block_after else Verdict.SANITISED
    safe = "" if verdict is Verdict.BLOCKED else cut(text, spans, rules.removed).strip()
    return Sanitised(safe, verdict, reasons, digest)


def user_message(text: str, rules: RuleSet | None = None) -> tuple[dict[str, str], Sanitised]:
    """User text as a chat message: always role ``user``, whatever the text claims to be."""
    outcome = sanitise(text, rules)
    return {"role": "user", "content": outcome.text}, outcome
